import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startupMessage } from '../../src/protocol/messages.js';
import { makeCertificates } from '../harness/certs.js';
import { startPostgres, type PgCluster } from '../harness/postgres.js';
import { startSluice, type RunningSluice } from '../harness/sluice.js';
import { RawClient, sleep, typedMessage } from './raw-client.js';

/**
 * The agent key travels as a cleartext password, so Sluice asks for it only over TLS or from loopback. The client
 * here is on this machine but connects to its own non-loopback address: to Sluice it is a remote peer.
 */
const external = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

let cluster: PgCluster;
let sluice: RunningSluice;
let certDir: string;
let ca: string;

beforeAll(async () => {
  cluster = await startPostgres({ settings: { log_connections: 'on' } });
  certDir = mkdtempSync(join(tmpdir(), 'sluice-cleartext-'));
  const certs = await makeCertificates(certDir);
  ca = readFileSync(certs.caFile, 'utf8');
  sluice = await startSluice(cluster, { config: { listen: { host: '0.0.0.0', port: 0 }, tls: { cert: certs.certFile, key: certs.keyFile } } });
});

afterAll(async () => {
  await sluice?.close();
  await cluster?.stop();
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

function upstreamConnections(): number {
  return (readFileSync(cluster.logFile, 'utf8').match(/connection received:/g) ?? []).length;
}

const client = (host: string, ssl: pg.ClientConfig['ssl']) =>
  new pg.Client({ host, port: sluice.port, user: 'agent', password: sluice.key, database: 'app', ssl });

describe.skipIf(!external)(`a client at a non-loopback address (${external ?? 'none on this machine'})`, () => {
  it('is refused before any password is asked for, and nothing reaches the database', async () => {
    const before = upstreamConnections();
    const c = await RawClient.connect(sluice.port, external);
    c.write(startupMessage({ user: 'agent', database: 'app' }));
    // Refused at once: no AuthenticationCleartextPassword ('R') comes first, so a client never sends its key.
    const err = await c.closedWithError();
    expect(err).toMatchObject({ V: 'FATAL', C: '28000', M: 'Sluice accepts passwords only over TLS or from loopback' });
    expect(err!['H']).toMatch(/sslmode=require/);
    await sleep(200);
    expect(upstreamConnections()).toBe(before);
  });

  it('node-postgres without TLS gets the same error; with TLS it logs in', async () => {
    const plain = client(external!, false);
    await expect(plain.connect()).rejects.toMatchObject({ code: '28000' });
    await plain.end().catch(() => undefined);
    const tls = client(external!, { ca, servername: 'localhost', rejectUnauthorized: true });
    await tls.connect();
    const r = await tls.query('SELECT current_user AS u');
    await tls.end();
    expect(r.rows).toEqual([{ u: 'app' }]);
  });

  it('a key sent anyway, unasked, over plaintext gets no session', async () => {
    const c = await RawClient.connect(sluice.port, external);
    c.write(Buffer.concat([startupMessage({ user: 'agent', database: 'app' }), typedMessage('p', Buffer.from(sluice.key + '\0'))]));
    expect(await c.closedWithError()).toMatchObject({ C: '28000' });
  });
});

describe('a loopback client (control)', () => {
  it('logs in over plaintext', async () => {
    const c = client('127.0.0.1', false);
    await c.connect();
    expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await c.end();
  });
});
