import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { md5PasswordResponse, saltedPasswordFor, ScramClient } from '../../../src/proxy/upstream-auth.js';

/**
 * RFC 7677 section 3 test vector (SCRAM-SHA-256, user "user", password "pencil").
 * ScramClient draws its nonce at random and sends an empty user name (PostgreSQL uses the startup user), so the
 * test pins both private fields to the RFC's values; the key derivation, proof and server check are then the
 * code under test, compared with the RFC's published bytes.
 */
const RFC = {
  password: 'pencil',
  clientNonce: 'rOprNGfwEbeRWgbNEkqO',
  clientFirstBare: 'n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal: 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

function pinned(nonce = RFC.clientNonce, password = RFC.password): ScramClient {
  const c = new ScramClient(password);
  Object.defineProperty(c, 'clientNonce', { value: nonce });
  return c;
}

/** Splits a SASLInitialResponse body into mechanism and client-first-message. */
function initial(body: Buffer): { mechanism: string; first: string } {
  const nul = body.indexOf(0);
  const len = body.readInt32BE(nul + 1);
  const first = body.subarray(nul + 5);
  expect(first.length).toBe(len);
  return { mechanism: body.toString('utf8', 0, nul), first: first.toString('utf8') };
}

describe('ScramClient', () => {
  it('sends SCRAM-SHA-256 with a gs2 header, an empty user name and its nonce', () => {
    const { mechanism, first } = initial(pinned().initialResponse());
    expect(mechanism).toBe('SCRAM-SHA-256');
    expect(first).toBe('n,,n=,r=rOprNGfwEbeRWgbNEkqO');
  });

  it('draws a fresh printable nonce per client', () => {
    const a = initial(new ScramClient('x').initialResponse()).first;
    const b = initial(new ScramClient('x').initialResponse()).first;
    expect(a).not.toBe(b);
    expect(a).toMatch(/^n,,n=,r=[\x21-\x2b\x2d-\x7e]{18,}$/); // printable, no comma (RFC 5802)
  });

  it('computes the RFC 7677 client proof and accepts the RFC server signature', async () => {
    const c = pinned();
    c.initialResponse();
    Object.defineProperty(c, 'clientFirstBare', { value: RFC.clientFirstBare, writable: true });
    expect((await c.continue(RFC.serverFirst)).toString('utf8')).toBe(RFC.clientFinal);
    expect(() => c.finish(RFC.serverFinal)).not.toThrow();
  });

  it('refuses a server signature that does not match (a server that does not know the password)', async () => {
    const c = pinned();
    c.initialResponse();
    Object.defineProperty(c, 'clientFirstBare', { value: RFC.clientFirstBare, writable: true });
    await c.continue(RFC.serverFirst);
    const wrong = Buffer.from(RFC.serverFinal.slice(2), 'base64');
    wrong[0]! ^= 1;
    expect(() => c.finish(`v=${wrong.toString('base64')}`)).toThrow(/signature/);
    expect(() => c.finish('e=invalid-proof')).toThrow(/signature/);
    expect(() => c.finish('v=')).toThrow(/signature/);
  });

  it('refuses finish() before continue()', () => {
    const c = pinned();
    c.initialResponse();
    expect(() => c.finish(RFC.serverFinal)).toThrow();
  });

  it('refuses a server nonce that does not extend the client nonce', async () => {
    const c = pinned();
    c.initialResponse();
    await expect(c.continue('r=somethingElse123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096')).rejects.toThrow(/nonce/);
    await expect(c.continue(`r=${RFC.clientNonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`)).rejects.toThrow(/nonce/);
    await expect(c.continue('s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096')).rejects.toThrow(/nonce/);
  });

  it('refuses a missing salt and absurd iteration counts', async () => {
    const c = pinned();
    c.initialResponse();
    const r = `r=${RFC.clientNonce}xyz`;
    await expect(c.continue(`${r},i=4096`)).rejects.toThrow(/salt/);
    for (const i of ['0', '-1', '1.5', 'abc', '', '100000000']) {
      await expect(c.continue(`${r},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=${i}`)).rejects.toThrow(/iteration/);
    }
  });
});

describe('md5PasswordResponse', () => {
  it('is "md5" + md5(md5(password + user) + salt)', () => {
    // Value computed independently (Python hashlib) for these inputs.
    expect(md5PasswordResponse('md5user', 's3cret', Buffer.from([0x01, 0x02, 0xfe, 0xff]))).toBe('md58ff2c9697bcee48258406be00ea6ef73');
  });

  it('uses the salt as raw bytes and depends on the user name', () => {
    const salt = Buffer.from([0, 0x80, 0xff, 0x7f]);
    const inner = createHash('md5').update('pwalice').digest('hex');
    const want = 'md5' + createHash('md5').update(Buffer.concat([Buffer.from(inner, 'latin1'), salt])).digest('hex');
    expect(md5PasswordResponse('alice', 'pw', salt)).toBe(want);
    expect(md5PasswordResponse('bob', 'pw', salt)).not.toBe(want);
  });
});

describe('SCRAM SaltedPassword cache', () => {
  it('derives once per password, salt and iteration count (concurrent uses share it) and matches PBKDF2', async () => {
    const a = saltedPasswordFor('pencil', 'W22ZaJ0SNY7soEsUEjb6gQ==', 4096);
    expect(saltedPasswordFor('pencil', 'W22ZaJ0SNY7soEsUEjb6gQ==', 4096)).toBe(a);
    expect(saltedPasswordFor('pencil', 'W22ZaJ0SNY7soEsUEjb6gQ==', 4097)).not.toBe(a);
    expect(saltedPasswordFor('other', 'W22ZaJ0SNY7soEsUEjb6gQ==', 4096)).not.toBe(a);
    const { pbkdf2Sync } = await import('node:crypto');
    expect((await a).equals(pbkdf2Sync('pencil', Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'), 4096, 32, 'sha256'))).toBe(true);
  });
});
