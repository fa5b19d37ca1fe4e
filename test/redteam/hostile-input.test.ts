import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDataStore } from '../../src/audit/db.js';
import { AgentKeyStore } from '../../src/identity/agent-keys.js';
import { cancelRequest, parseErrorFields, sslRequest, startupMessage } from '../../src/protocol/messages.js';
import { makeCertificates } from '../harness/certs.js';
import { freePort } from '../harness/net.js';
import { startPostgres, type PgCluster } from '../harness/postgres.js';
import { startSluice, type RunningSluice } from '../harness/sluice.js';
import { query, RawClient, sleep, typedHeader, typedMessage } from './raw-client.js';

/**
 * Hostile and malformed input against a real PostgreSQL behind a real broker. Each attack must end only its
 * own connection with a PostgreSQL FATAL the client can decode, while an honest session on the same broker
 * keeps running queries the whole time.
 */
let cluster: PgCluster;
let sluice: RunningSluice;
let healthy: pg.Client;
let downPort: number;
const extra: RunningSluice[] = [];
let certDir: string;

const MAX_MESSAGE = 4096;

beforeAll(async () => {
  // log_connections lets a test prove that a refused login never reached the database.
  cluster = await startPostgres({ settings: { log_connections: 'on' } });
  downPort = await freePort(); // nothing listens here
  const base = { host: cluster.host, database: 'app', user: 'app', password: { env: 'APP_PG_PASSWORD' }, tls: { mode: 'disable' as const } };
  sluice = await startSluice(cluster, {
    config: {
      limits: { maxMessageBytes: MAX_MESSAGE },
      targets: [{ ...base, name: 'app', port: cluster.port }, { ...base, name: 'down', port: downPort }],
    },
  });
  healthy = new pg.Client({ connectionString: sluice.url() });
  await healthy.connect();
  certDir = mkdtempSync(join(tmpdir(), 'sluice-redteam-certs-'));
});
afterAll(async () => {
  await healthy?.end().catch(() => {});
  for (const s of extra) await s.close();
  await sluice?.close();
  await cluster?.stop();
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

/** Runs `attack` while the honest session keeps querying; both must finish and the honest one never fail. */
async function alongside<T>(attack: () => Promise<T>): Promise<T> {
  let done = false;
  let n = 0;
  const honest = (async () => {
    while (!done) {
      const r = await healthy.query('SELECT $1::int AS n', [n]);
      expect(r.rows[0].n).toBe(n);
      n++;
      await sleep(5);
    }
  })();
  try {
    return await attack();
  } finally {
    done = true;
    await honest;
    expect(n).toBeGreaterThan(0);
  }
}

async function loggedIn(s: RunningSluice = sluice): Promise<RawClient> {
  const c = await RawClient.connect(s.port);
  await c.login('agent', s.key, 'app');
  return c;
}

/** Sends `bytes` on a fresh connection (after login if asked) and returns the FATAL it was closed with. */
async function fatalFor(bytes: Buffer | string, opts: { login?: boolean } = {}): Promise<Record<string, string>> {
  const c = opts.login ? await loggedIn() : await RawClient.connect(sluice.port);
  c.write(bytes);
  const err = await c.closedWithError();
  expect(err).not.toBeNull();
  expect(err!.V).toBe('FATAL');
  return err!;
}

/** TCP connections PostgreSQL has accepted so far (log_connections), to prove no upstream login happened. */
function upstreamConnections(): number {
  return (readFileSync(cluster.logFile, 'utf8').match(/connection received: host=127\.0\.0\.1/g) ?? []).length;
}

function startupWith(code: number, body: Buffer): Buffer {
  const b = Buffer.alloc(8 + body.length);
  b.writeInt32BE(b.length, 0);
  b.writeInt32BE(code, 4);
  body.copy(b, 8);
  return b;
}

describe('malformed frames close only their own connection with FATAL 08P01', () => {
  it('typed message length < 4 after auth', () => alongside(async () => {
    expect(await fatalFor(typedHeader('Q', 3), { login: true })).toMatchObject({ C: '08P01' });
  }));

  it('garbage bytes as the first packet (negative and plausible length words)', () => alongside(async () => {
    expect(await fatalFor(Buffer.from('deadbeef00112233445566778899aabbccddeeff', 'hex'))).toMatchObject({ C: '08P01' });
    expect(await fatalFor(Buffer.concat([Buffer.from([0, 0, 0, 16]), Buffer.from('garbage!garb')]))).toMatchObject({ C: '08P01' });
  }));

  it('an HTTP request', () => alongside(async () => {
    const err = await fatalFor('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
    expect(err).toMatchObject({ C: '08P01', M: expect.stringMatching(/not an HTTP server/) });
  }));

  it('a TLS ClientHello without SSLRequest', () => alongside(async () => {
    const hello = Buffer.from('16030100a5010000a10303' + '00'.repeat(32), 'hex');
    expect(await fatalFor(hello)).toMatchObject({ C: '08P01', M: expect.stringMatching(/TLS/) });
  }));

  it('a startup packet of 10001 bytes is refused from its header, before the body is sent', () => alongside(async () => {
    const header = Buffer.alloc(8); // length word + protocol 3.0; the 9993 body bytes are never sent
    header.writeInt32BE(10_001, 0);
    header.writeInt32BE(196608, 4);
    expect(await fatalFor(header)).toMatchObject({ C: '08P01', M: expect.stringMatching(/10001/) });
  }));

  it('a message over limits.maxMessageBytes is refused from its header, before the body is sent', () => alongside(async () => {
    const err = await fatalFor(typedHeader('Q', MAX_MESSAGE * 10), { login: true });
    expect(err).toMatchObject({ C: '08P01', M: expect.stringMatching(new RegExp(`${MAX_MESSAGE}`)) });
    // Also before authentication: an unauthenticated peer cannot make Sluice buffer a huge "password".
    const c = await RawClient.connect(sluice.port);
    c.write(startupMessage({ user: 'agent', database: 'app' }));
    expect((await c.frame()).code).toBe('R');
    c.write(typedHeader('p', 100_000_000));
    expect(await c.closedWithError()).toMatchObject({ V: 'FATAL', C: '08P01' });
  }));

  it('protocol version 2.0', () => alongside(async () => {
    const body = Buffer.from('user\0agent\0database\0app\0\0');
    expect(await fatalFor(startupWith(2 << 16, body))).toMatchObject({ C: '08P01', M: expect.stringMatching(/2\.0/) });
  }));

  it('an unknown message type', () => alongside(async () => {
    expect(await fatalFor(typedMessage('y'), { login: true })).toMatchObject({ C: '08P01' });
  }));
});

describe('refused features', () => {
  it('FunctionCall (F) gets ERROR 0A000 and the session stays usable', () => alongside(async () => {
    const body = Buffer.alloc(10); // function oid, 0 arg formats, 0 args, text result
    body.writeInt32BE(1598, 0); // random()
    const c = await loggedIn();
    c.write(typedMessage('F', body));
    const frames = [...await c.readUntil('E'), ...await c.readUntil('Z')];
    expect(frames.map((f) => f.code)).toEqual(['E', 'Z']);
    expect(parseErrorFields(frames[0]!.frame)).toMatchObject({ V: 'ERROR', C: '0A000', M: expect.stringContaining('FunctionCall') });
    c.write(query('SELECT 41 + 1'));
    expect((await c.readUntil('Z')).map((f) => f.code)).toEqual(['T', 'D', 'C', 'Z']);
    c.destroy();
  }));

  it.each([
    ['options', '-c role=x', '0A000'],
    ['replication', 'database', '0A000'],
    ['client_encoding', 'LATIN1', '22023'],
  ])('startup parameter %s=%s gets %s', (k, v, code) => alongside(async () => {
    const err = await fatalFor(startupMessage({ user: 'agent', database: 'app', [k]: v }));
    expect(err).toMatchObject({ C: code, M: expect.stringContaining(k) });
  }));
});

describe('session settings Sluice pins', () => {
  // Read with the real parser and refused before the server sees them (builtin:pinned-settings); the session goes on.
  // (If a change slipped through anyway, the server's ParameterStatus would end the session: see pinned-settings.test.ts.)
  it.each([
    ["SET client_encoding TO 'SJIS'"],
    ['SET standard_conforming_strings = off'],
    ["SELECT set_config('client_encoding', 'BIG5', false)"],
  ])('%s is refused with 42501 and the session stays in UTF-8', (sql) => alongside(async () => {
    const c = await loggedIn();
    c.write(query(sql));
    const frames = [...await c.readUntil('E'), ...await c.readUntil('Z')];
    expect(frames.map((f) => f.code)).toEqual(['E', 'Z']);
    expect(parseErrorFields(frames[0]!.frame)).toMatchObject({ V: 'ERROR', C: '42501', M: expect.stringContaining('builtin:pinned-settings') });
    c.write(query('SHOW client_encoding'));
    const shown = await c.readUntil('Z');
    expect(shown.find((f) => f.code === 'D')!.frame.toString('utf8')).toContain('UTF8');
    c.destroy();
  }));
});

describe('CancelRequest', () => {
  it('a guessed key cancels nothing; the key Sluice handed out cancels the running statement', () => alongside(async () => {
    const c = await RawClient.connect(sluice.port);
    const key = (await c.login('agent', sluice.key, 'app')).find((f) => f.code === 'K')!.frame;
    const [pid, secret] = [key.readInt32BE(5), key.readInt32BE(9)];
    c.write(query('SELECT pg_sleep(20)'));
    for (const guess of [[pid, secret ^ 1], [pid + 1, secret]] as const) {
      const g = await RawClient.connect(sluice.port);
      g.write(cancelRequest(guess[0], guess[1]));
      expect(await g.closedWithError()).toBeNull(); // like PostgreSQL: no answer either way
    }
    await sleep(300);
    expect(c.pending.length).toBe(0); // still sleeping
    const ok = await RawClient.connect(sluice.port);
    ok.write(cancelRequest(pid, secret));
    await ok.closedWithError();
    const frames = await c.readUntil('E');
    expect(parseErrorFields(frames.at(-1)!.frame)).toMatchObject({ C: '57014' });
    c.destroy();
  }));
});

describe('SSL and GSS negotiation', () => {
  it('SSLRequest without TLS configured gets N, then a normal startup works', () => alongside(async () => {
    const c = await RawClient.connect(sluice.port);
    c.write(sslRequest());
    expect(await c.byte()).toBe('N');
    await c.login('agent', sluice.key, 'app');
    c.write(query('SELECT 7'));
    expect((await c.readUntil('Z')).map((f) => f.code)).toEqual(['T', 'D', 'C', 'Z']);
    c.destroy();
  }));

  it('GSSENCRequest gets N, then a normal startup works', () => alongside(async () => {
    const c = await RawClient.connect(sluice.port);
    c.write(startupWith(80877104, Buffer.alloc(0)));
    expect(await c.byte()).toBe('N');
    await c.login('agent', sluice.key, 'app');
    c.destroy();
  }));

  it('protocol 3.2 with a _pq_ option is answered with NegotiateProtocolVersion 3.0, then login works', () => alongside(async () => {
    const c = await RawClient.connect(sluice.port);
    c.write(startupWith((3 << 16) | 2, Buffer.from(`user\0agent\0database\0app\0_pq_.test\0x\0\0`)));
    const v = await c.frame();
    expect(v.code).toBe('v');
    expect([v.frame.readInt32BE(5), v.frame.readInt32BE(9), v.frame.toString('utf8', 13)]).toEqual([0, 1, '_pq_.test\0']);
    expect((await c.frame()).code).toBe('R');
    c.write(typedMessage('p', Buffer.from(sluice.key + '\0')));
    await c.readUntil('Z');
    c.destroy();
  }));

  describe('with TLS configured', () => {
    let tlsSluice: RunningSluice;
    let ca: string;
    beforeAll(async () => {
      const certs = await makeCertificates(certDir);
      ca = readFileSync(certs.caFile, 'utf8');
      tlsSluice = await startSluice(cluster, { config: { tls: { cert: certs.certFile, key: certs.keyFile } } });
      extra.push(tlsSluice);
    });

    it('a verify-full TLS connection with pg works end to end', () => alongside(async () => {
      const c = new pg.Client({
        host: '127.0.0.1', port: tlsSluice.port, user: 'agent', password: tlsSluice.key, database: 'app',
        ssl: { ca, servername: 'localhost', rejectUnauthorized: true },
      });
      await c.connect();
      const r = await c.query('SELECT current_user AS u, $1::text AS echo', ['over tls']);
      await c.end();
      expect(r.rows[0]).toEqual({ u: 'app', echo: 'over tls' });
    }));

    it('refuses plaintext sent right after SSLRequest (CVE-2021-23214), in plaintext, before any TLS', () => alongside(async () => {
      const c = await RawClient.connect(tlsSluice.port);
      c.write(Buffer.concat([sslRequest(), startupMessage({ user: 'agent', database: 'app' })]));
      const err = await c.closedWithError();
      expect(err).toMatchObject({ V: 'FATAL', C: '08P01', M: expect.stringMatching(/unencrypted data after SSL request/) });
    }));
  });
});

describe('authentication', () => {
  /** Login attempt that must fail with `code` and must not open any upstream connection. */
  async function refusedLogin(user: string, password: string, database: string, code: string): Promise<Record<string, string>> {
    const before = upstreamConnections();
    const c = await RawClient.connect(sluice.port);
    c.write(startupMessage({ user, database }));
    expect((await c.frame()).code).toBe('R');
    c.write(typedMessage('p', Buffer.from(password + '\0')));
    const err = await c.closedWithError();
    expect(err).toMatchObject({ V: 'FATAL', C: code });
    await sleep(300); // a wrongly opened upstream connection would be logged by now
    expect(upstreamConnections()).toBe(before);
    return err!;
  }

  it('the upstream-connection probe sees a successful login (control)', async () => {
    const before = upstreamConnections();
    (await loggedIn()).destroy();
    await sleep(300);
    expect(upstreamConnections()).toBe(before + 1);
  });

  it('wrong key, malformed key and unknown user get 28P01 without reaching the database', () => alongside(async () => {
    const wrong = 'sk_' + 'A'.repeat(43);
    expect((await refusedLogin('agent', wrong, 'app', '28P01')).M).toMatch(/password authentication failed for user "agent"/);
    await refusedLogin('agent', 'not-a-key', 'app', '28P01');
    await refusedLogin('nobody', sluice.key, 'app', '28P01');
    const rows = sluice.broker.audit.listSessions(3);
    expect(rows.map((r) => r.endReason)).toEqual(['authentication failed: unknown', 'authentication failed: malformed', 'authentication failed: mismatch']);
  }));

  it('an expired key gets 28P01', () => alongside(async () => {
    const { secret } = sluice.broker.keys.add('shortlived', { groups: [], expiresAt: Date.now() + 1000 });
    (await loginAs('shortlived', secret)).destroy(); // works while valid
    await sleep(1200);
    expect((await refusedLogin('shortlived', secret, 'app', '28P01')).M).toMatch(/expired/);
  }));

  it('a key revoked by another process gets 28P01 on the running broker', () => alongside(async () => {
    const { secret } = sluice.broker.keys.add('revokee', { groups: [] });
    const db = openDataStore(sluice.dataDir);
    try {
      expect(new AgentKeyStore(db).revoke('revokee')).toBe(true);
    } finally {
      db.close();
    }
    expect((await refusedLogin('revokee', secret, 'app', '28P01')).M).toMatch(/revoked/);
  }));

  it('an unknown target gets 3D000 after a correct key', () => alongside(async () => {
    const err = await refusedLogin('agent', sluice.key, 'nosuchdb', '3D000');
    expect(err.M).toMatch(/nosuchdb/);
  }));

  async function loginAs(user: string, secret: string): Promise<RawClient> {
    const c = await RawClient.connect(sluice.port);
    await c.login(user, secret, 'app');
    return c;
  }
});

describe('limits', () => {
  it('auth timeout: a silent connection gets a FATAL and is closed', () => alongside(async () => {
    const s = await startSluice(cluster, { config: { limits: { authTimeoutMs: 300 } } });
    extra.push(s);
    const silent = await RawClient.connect(s.port);
    expect(await silent.closedWithError()).toMatchObject({ V: 'FATAL', C: '08P01', M: expect.stringMatching(/timed out/) });
    // A client that sends its startup but never the password is also cut off.
    const half = await RawClient.connect(s.port);
    half.write(startupMessage({ user: 'agent', database: 'app' }));
    expect(await half.closedWithError()).toMatchObject({ V: 'FATAL', M: expect.stringMatching(/timed out/) });
  }));

  it('maxClientConnections: 2 refuses a third with 53300 and frees the slot when one leaves', () => alongside(async () => {
    const s = await startSluice(cluster, { config: { limits: { maxClientConnections: 2 } } });
    extra.push(s);
    const held = [new pg.Client({ connectionString: s.url() }), new pg.Client({ connectionString: s.url() })];
    for (const c of held) await c.connect();
    const third = new pg.Client({ connectionString: s.url() });
    await expect(third.connect()).rejects.toMatchObject({ code: '53300' });
    for (const c of held) expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await held[0]!.end();
    const fourth = new pg.Client({ connectionString: s.url() });
    await fourth.connect();
    await fourth.end();
    await held[1]!.end();
  }));
});

describe('upstream failures', () => {
  it('upstream down: 08006 with a clear message, and the session is recorded as ended', () => alongside(async () => {
    const c = await RawClient.connect(sluice.port);
    c.write(startupMessage({ user: 'agent', database: 'down' }));
    await c.frame();
    c.write(typedMessage('p', Buffer.from(sluice.key + '\0')));
    const err = await c.closedWithError();
    expect(err).toMatchObject({ V: 'FATAL', C: '08006', M: expect.stringMatching(/could not connect to target "down".*ECONNREFUSED/) });
    const row = sluice.broker.audit.listSessions(1)[0]!;
    expect(row).toMatchObject({ identity: 'agent', target: 'down', endReason: expect.stringMatching(/upstream connect failed: .*ECONNREFUSED/) });
    expect(row.endedAt).not.toBeNull();
  }));

  it('pg_terminate_backend upstream: the client sees the server FATAL 57P01 and the end reason says so', () => alongside(async () => {
    const c = await loggedIn();
    c.write(query('SELECT pg_backend_pid()'));
    const frames = await c.readUntil('Z');
    const data = frames.find((f) => f.code === 'D')!.frame;
    const pid = Number(data.toString('utf8', 11, 11 + data.readInt32BE(7)));
    const session = sluice.broker.audit.listSessions(1)[0]!;
    await cluster.sql(`SELECT pg_terminate_backend(${pid})`);
    expect(await c.closedWithError()).toMatchObject({ V: 'FATAL', C: '57P01' });
    await sleep(100);
    const row = sluice.broker.audit.listSessions(20).find((r) => r.id === session.id)!;
    expect(row.endReason).toMatch(/57P01/);
  }));
});

describe('after all of that', () => {
  it('the broker still serves a new client and the honest session still works', async () => {
    const c = new pg.Client({ connectionString: sluice.url() });
    await c.connect();
    expect((await c.query('SELECT 40 + 2 AS n')).rows).toEqual([{ n: 42 }]);
    await c.end();
    expect((await healthy.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });
});
