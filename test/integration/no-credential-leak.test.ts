/**
 * The upstream credential stays inside Sluice: a client that logs in with its agent key and runs reads,
 * failing statements, refused statements, SHOW ALL and current_setting() never receives the target's
 * password, in any common encoding, and neither the audit store nor the broker's log holds it. The session
 * row records the client's real source address (a second loopback address, so it cannot be a constant).
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseErrorFields, terminate } from '../../src/protocol/messages.js';
import { startPostgres, type PgCluster } from '../harness/postgres.js';
import { startSluice, type RunningSluice } from '../harness/sluice.js';
import { RawClient, query, type BackendFrame } from '../redteam/raw-client.js';
import { lastSessionId, sessionsAfter, waitFor } from './clients/util.js';

/** Distinctive and not hex, so its hex and base64 forms cannot occur by accident. */
const UPSTREAM_PASSWORD = `Upstream-Secret-${randomBytes(12).toString('base64url')}-zq`;
const CLIENT_SOURCE = '127.0.0.3';

let cluster: PgCluster;
let sluice: RunningSluice;

beforeAll(async () => {
  cluster = await startPostgres();
  await cluster.sql(`ALTER ROLE app PASSWORD '${UPSTREAM_PASSWORD}';`);
  // startSluice gives the broker roles.app.password as the `app` target's credential.
  cluster.roles.app.password = UPSTREAM_PASSWORD;
  sluice = await startSluice(cluster, {
    config: { policy: { rules: [{ name: 'leak-probe-reads', match: { identities: ['agent'] }, allow: ['read'] }] } },
  });
}, 120_000);
afterAll(async () => {
  await sluice?.close();
  await cluster?.stop();
});

/** Names of the encodings of `secret` found in `data`: raw UTF-8/UTF-16, hex, base64/base64url at any alignment. */
function leaks(data: Buffer, secret: string): string[] {
  const raw = Buffer.from(secret, 'utf8');
  const needles: [string, Buffer][] = [
    ['utf8', raw],
    ['utf16le', Buffer.from(secret, 'utf16le')],
    ['hex', Buffer.from(raw.toString('hex'), 'latin1')],
    ['HEX', Buffer.from(raw.toString('hex').toUpperCase(), 'latin1')],
  ];
  // Inside a longer base64 text the secret starts at byte offset 0, 1 or 2 of a 3-byte group; from the
  // next group boundary on, its whole groups encode to the same characters wherever it sits.
  for (let skip = 0; skip < 3; skip++) {
    const tail = raw.subarray(skip);
    const whole = Math.floor(tail.length / 3) * 4;
    needles.push([`base64+${skip}`, Buffer.from(tail.toString('base64').slice(0, whole), 'latin1')]);
    needles.push([`base64url+${skip}`, Buffer.from(tail.toString('base64url').slice(0, whole), 'latin1')]);
  }
  return needles.filter(([, n]) => data.includes(n)).map(([name]) => name);
}

/** Every file under `dir`, concatenated (the audit database, its WAL and anything else Sluice keeps there). */
function bytesUnder(dir: string): Buffer {
  const out: Buffer[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(readFileSync(join(e.parentPath, e.name)));
  }
  return Buffer.concat(out);
}

/** Sends one simple Query and reads every frame up to its ReadyForQuery, errors included. */
async function run(raw: RawClient, sql: string): Promise<BackendFrame[]> {
  raw.write(query(sql));
  const frames: BackendFrame[] = [];
  for (let f = await raw.frame(); ; f = await raw.frame()) {
    frames.push(f);
    if (f.code === 'Z') return frames;
  }
}
const errorOf = (frames: BackendFrame[]) => {
  const e = frames.find((f) => f.code === 'E');
  return e ? parseErrorFields(e.frame) : undefined;
};

describe('no upstream credential leaks to the client or the audit store', () => {
  it('control: the detector finds the password in each encoding, embedded at any offset', () => {
    for (const prefix of ['', 'a', 'ab']) {
      const blob = Buffer.from(`${prefix}${UPSTREAM_PASSWORD}!`, 'utf8');
      expect(leaks(Buffer.from(`x${blob.toString('base64')}y`), UPSTREAM_PASSWORD)).toContain(`base64+${(3 - prefix.length) % 3}`);
      expect(leaks(Buffer.from(`x${blob.toString('base64url')}y`), UPSTREAM_PASSWORD)).toContain(`base64url+${(3 - prefix.length) % 3}`);
      expect(leaks(Buffer.from(`x${blob.toString('hex')}y`), UPSTREAM_PASSWORD)).toEqual(['hex']);
    }
    expect(leaks(Buffer.from(`..${UPSTREAM_PASSWORD}..`, 'utf16le'), UPSTREAM_PASSWORD)).toEqual(['utf16le']);
    expect(leaks(Buffer.from('nothing here'), UPSTREAM_PASSWORD)).toEqual([]);
  });

  it('a raw client receives none of it across login, reads, SHOW ALL, settings, errors and refusals', async () => {
    const received: Buffer[] = [];
    const raw = await RawClient.connect(sluice.port);
    raw.socket.on('data', (d: Buffer) => received.push(Buffer.from(d)));
    try {
      const hello = await raw.login('agent', sluice.key, 'app', { application_name: 'leak-probe' });
      expect(hello.map((f) => f.code)).toContain('K');

      const show = await run(raw, 'SHOW ALL');
      expect(show.filter((f) => f.code === 'D').length).toBeGreaterThan(300);
      const settings = await run(raw, `SELECT current_setting('application_name') AS app, current_setting('server_version') AS v,
        current_setting('search_path') AS sp, current_setting('password_encryption') AS pe, current_user AS who`);
      expect(settings.find((f) => f.code === 'D')!.frame.toString('utf8')).toContain('leak-probe');
      expect(errorOf(await run(raw, 'SELECT usename, application_name, client_addr, query FROM pg_stat_activity'))).toBeUndefined();
      // Failing upstream: an unknown table, a setting only privileged roles may read, the SCRAM verifiers.
      expect(errorOf(await run(raw, 'SELECT * FROM leak_probe_no_such_table'))).toMatchObject({ C: '42P01' });
      expect(errorOf(await run(raw, "SELECT current_setting('data_directory')"))).toMatchObject({ C: '42501' });
      expect(errorOf(await run(raw, 'SELECT rolname, rolpassword FROM pg_authid'))).toMatchObject({ C: '42501' });
      // Refused by Sluice's policy: only reads are allowed.
      expect(errorOf(await run(raw, 'CREATE TABLE leak_probe_t (id int)'))).toMatchObject({ C: '42501' });
      expect(errorOf(await run(raw, "SET application_name = 'x'"))).toMatchObject({ C: '42501' });
      raw.write(terminate());
      await raw.until(() => raw.closed, 'Sluice to close after Terminate');
    } finally {
      raw.destroy();
    }
    const all = Buffer.concat(received);
    expect(all.includes('leak_probe_no_such_table')).toBe(true); // the capture holds what the server said
    expect(leaks(all, UPSTREAM_PASSWORD)).toEqual([]);
  });

  it('node-postgres from another loopback address: real client_addr in the session row; no password on the wire or on disk', async () => {
    const before = lastSessionId(sluice);
    const received: Buffer[] = [];
    let socket: net.Socket | undefined;
    const c = new pg.Client({
      connectionString: sluice.url(),
      application_name: 'leak-probe-pg',
      // pg calls connect(port, host); bind the source address so the recorded one cannot be a default.
      stream: () => {
        const s = new net.Socket();
        const connect = s.connect.bind(s) as (o: net.TcpNetConnectOpts) => net.Socket;
        Object.assign(s, { connect: (port: number, host: string) => connect({ port, host, localAddress: CLIENT_SOURCE }) });
        s.on('data', (d: Buffer) => received.push(Buffer.from(d)));
        return (socket = s);
      },
    });
    await c.connect();
    const used = `${socket!.localAddress}:${socket!.localPort}`; // read while connected: a closed socket forgets it
    expect(socket!.localAddress).toBe(CLIENT_SOURCE);
    try {
      expect((await c.query('SELECT inet_client_addr()::text AS upstream_sees, current_user AS who')).rows).toEqual([{ upstream_sees: '127.0.0.1/32', who: 'app' }]);
      await expect(c.query('SELECT * FROM leak_probe_missing_pg')).rejects.toMatchObject({ code: '42P01' });
    } finally {
      await c.end();
    }
    const sessions = await waitFor(() => {
      const s = sessionsAfter(sluice, before);
      return s.length === 1 && s[0]!.endedAt !== null ? s : undefined;
    }, 'the node-postgres session to end');
    expect(sessions[0]).toMatchObject({ identity: 'agent', target: 'app', applicationName: 'leak-probe-pg', clientAddr: used });
    expect(leaks(Buffer.concat(received), UPSTREAM_PASSWORD)).toEqual([]);

    const stored = bytesUnder(sluice.dataDir);
    expect(stored.includes('leak_probe_missing_pg')).toBe(true); // the files read are the live audit store
    expect(leaks(stored, UPSTREAM_PASSWORD)).toEqual([]);
    expect(leaks(Buffer.from(sluice.logs.join('\n')), UPSTREAM_PASSWORD)).toEqual([]);
  });
});
