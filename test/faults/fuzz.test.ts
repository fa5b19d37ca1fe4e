/**
 * Protocol fuzzing: real client message sequences (startup, simple and extended protocol, COPY, FunctionCall), mutated
 * together with sessions recorded from node-postgres and postgres.js (bit flips, random bytes, truncation, overlong and negative lengths, shuffled and duplicated frames, garbage) and
 * sent at Sluice, before and after authentication. Bounded: every fuzzing connection is dropped after a short
 * silence. Sluice must not crash, hang, or leak an unhandled rejection, and a canary session keeps working.
 */
import net from 'node:net';
import { serialize } from 'pg-protocol';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { passwordMessage, startupMessage } from '../../src/protocol/messages.js';
import { startPostgres, type PgCluster } from '../harness/postgres.js';
import { startSluice, type RunningSluice } from '../harness/sluice.js';
import { query, RawClient, typedMessage } from '../redteam/raw-client.js';
import { pick, report, rssMb } from './metrics.js';

const FRAMES = pick(10_000, 120_000);
const PARALLEL = 24;
const SILENCE_MS = 150;

let cluster: PgCluster;
let sluice: RunningSluice;
beforeAll(async () => {
  cluster = await startPostgres();
  await cluster.sql('CREATE TABLE f (a int, b text); GRANT ALL ON f TO app;', 'app');
  sluice = await startSluice(cluster, { config: { limits: { authTimeoutMs: 2000, maxMessageBytes: 65536, maxClientConnections: 500 } } });
}, 120_000);
afterAll(async () => {
  await sluice?.close();
  await cluster?.stop();
});

/** Deterministic PRNG (mulberry32) so a failure can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Sequences of frames a real session sends after authentication. */
const CORPUS: Buffer[][] = [
  [query('SELECT 1'), query('SELECT a, b FROM f WHERE a = 1; SELECT now()')],
  [serialize.parse({ name: 's1', text: 'SELECT $1::int + 1' }), serialize.bind({ statement: 's1', values: ['41'] }), serialize.describe({ type: 'P' }), serialize.execute({}), serialize.sync()],
  [serialize.parse({ text: 'INSERT INTO f VALUES ($1, $2)' }), serialize.bind({ values: ['1', 'x'] }), serialize.execute({}), serialize.parse({ text: 'SELECT * FROM f' }), serialize.bind({}), serialize.execute({ rows: 2 }), serialize.sync()],
  [query('COPY f FROM STDIN'), serialize.copyData(Buffer.from('2\ty\n')), serialize.copyDone(), query('SELECT count(*) FROM f')],
  [query('BEGIN'), query('DECLARE c CURSOR FOR SELECT * FROM f'), query('FETCH 2 FROM c'), query('COMMIT')],
  [typedMessage('F', Buffer.from([0, 0, 4, 0, 0, 0, 0, 0, 0, 0])), serialize.flush(), serialize.close({ type: 'S', name: 's1' }), serialize.sync()],
  [query("SELECT 'héllo ☃', E'\\\\x41', $$dollar$$"), query('PREPARE p AS SELECT 1'), query('EXECUTE p'), query('DEALLOCATE p')],
];

/**
 * Records what real drivers send: node-postgres (simple and extended protocol) and postgres.js go through a TCP tap in
 * front of Sluice; everything after each client's startup and password is split into frames and joins the corpus.
 */
async function recordRealSessions(): Promise<Buffer[][]> {
  const sessions: Buffer[] = [];
  const tap = net.createServer((client) => {
    const chunks: Buffer[] = [];
    const upstream = net.connect({ host: '127.0.0.1', port: sluice.port });
    client.on('data', (d: Buffer) => { chunks.push(d); upstream.write(d); });
    upstream.on('data', (d: Buffer) => client.write(d));
    client.on('close', () => { upstream.destroy(); sessions.push(Buffer.concat(chunks)); });
    upstream.on('close', () => client.destroy());
    client.on('error', () => {});
    upstream.on('error', () => {});
  });
  await new Promise<void>((r) => tap.listen(0, '127.0.0.1', () => r()));
  const port = (tap.address() as net.AddressInfo).port;
  const url = `postgres://agent:${encodeURIComponent(sluice.key)}@127.0.0.1:${port}/app?sslmode=disable`;
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query('SELECT 1 AS one');
  await c.query('INSERT INTO f VALUES ($1, $2)', [7, 'seven']);
  await c.query({ name: 'by_a', text: 'SELECT * FROM f WHERE a = $1', values: [7] });
  await c.query({ name: 'by_a', text: 'SELECT * FROM f WHERE a = $1', values: [8] });
  await c.query('BEGIN; SELECT count(*) FROM f; COMMIT');
  await c.end();
  const sql = postgres(url, { max: 1 });
  await sql`SELECT ${1}::int AS x, ${'y'} AS y`;
  await sql`SELECT * FROM f WHERE b = ${'seven'}`;
  await sql.end();
  await new Promise<void>((r) => tap.close(() => r()));
  await new Promise((r) => setTimeout(r, 50));
  return sessions.map(afterLogin).filter((f) => f.length > 0);
}

/** The typed frames after the startup packet and the password message. */
function afterLogin(bytes: Buffer): Buffer[] {
  let at = bytes.readInt32BE(0); // startup packet: length, no type byte
  const frames: Buffer[] = [];
  while (at + 5 <= bytes.length) {
    const len = bytes.readInt32BE(at + 1) + 1;
    frames.push(bytes.subarray(at, at + len));
    at += len;
  }
  return frames.filter((f) => f[0] !== 0x70); // not the password
}

function mutate(frames: Buffer[], rnd: () => number): Buffer {
  let seq = frames.map((f) => Buffer.from(f));
  const n = 1 + Math.floor(rnd() * 3);
  for (let k = 0; k < n; k++) {
    const i = Math.floor(rnd() * seq.length);
    const f = seq[i]!;
    switch (Math.floor(rnd() * 8)) {
      case 0: f[Math.floor(rnd() * f.length)]! ^= 1 << Math.floor(rnd() * 8); break; // bit flip
      case 1: f[Math.floor(rnd() * f.length)] = Math.floor(rnd() * 256); break; // random byte
      case 2: seq[i] = f.subarray(0, Math.floor(rnd() * f.length)); break; // truncated
      case 3: if (f.length >= 5) f.writeInt32BE([0, 3, -1, 0x7fffffff, 65537, f.length + 100][Math.floor(rnd() * 6)]!, 1); break; // bad length
      case 4: seq = seq.sort(() => rnd() - 0.5); break; // shuffled
      case 5: seq.splice(i, 0, f); break; // duplicated
      case 6: seq.splice(i, 0, Buffer.from(Array.from({ length: 1 + Math.floor(rnd() * 40) }, () => Math.floor(rnd() * 256)))); break; // garbage
      default: f[0] = 'PBEDSQHXCdcfF'.charCodeAt(Math.floor(rnd() * 13)); break; // another message type
    }
  }
  return Buffer.concat(seq);
}

/** Sends `bytes` and waits until Sluice closes the connection or stays silent for a moment. */
function sendAndDrain(sock: net.Socket, bytes: Buffer): Promise<void> {
  return new Promise((resolve) => {
    let timer = setTimeout(done, SILENCE_MS);
    function done(): void {
      clearTimeout(timer);
      sock.destroy();
      resolve();
    }
    sock.on('data', () => { clearTimeout(timer); timer = setTimeout(done, SILENCE_MS); });
    sock.on('close', done);
    sock.on('error', () => {});
    sock.write(bytes);
  });
}

describe('protocol fuzzing', () => {
  it(`${FRAMES} mutated frames before and after authentication: no crash, no hang, no unhandled rejection, others unaffected`, async () => {
    const seed = Number(process.env.SLUICE_FUZZ_SEED ?? Date.now() % 1_000_000);
    const rnd = prng(seed);
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    process.on('uncaughtException', onUnhandled);

    // The canary: a normal session that must keep working throughout.
    const canary = new pg.Client({ connectionString: sluice.url() });
    await canary.connect();
    let canaryOk = 0;
    let canaryFailed: unknown = null;
    let stop = false;
    const canaryLoop = (async () => {
      while (!stop) {
        try {
          await canary.query('SELECT 1');
          canaryOk++;
        } catch (e) {
          canaryFailed = e;
          return;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    const recorded = await recordRealSessions();
    expect(recorded.length).toBeGreaterThanOrEqual(2);
    const corpus = [...CORPUS, ...recorded];
    const startup = startupMessage({ user: 'agent', database: 'app' });
    let sent = 0;
    let connections = 0;
    const rss0 = rssMb();
    let peak = rss0;
    const t0 = Date.now();
    const worker = async () => {
      while (sent < FRAMES) {
        const pre = rnd() < 0.3;
        const base = pre ? [startup, passwordMessage(Buffer.from(`${sluice.key}\0`))] : corpus[Math.floor(rnd() * corpus.length)]!;
        const bytes = mutate(base, rnd);
        sent += base.length;
        connections++;
        if (pre) {
          const s = net.connect({ host: '127.0.0.1', port: sluice.port });
          await new Promise<void>((r) => { s.once('connect', () => r()); s.once('error', () => r()); });
          await sendAndDrain(s, bytes);
        } else {
          const c = await RawClient.connect(sluice.port);
          await c.login('agent', sluice.key, 'app');
          c.socket.removeAllListeners('data');
          await sendAndDrain(c.socket, bytes);
        }
        peak = Math.max(peak, rssMb());
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    stop = true;
    await canaryLoop;
    await canary.end();
    process.off('unhandledRejection', onUnhandled);
    process.off('uncaughtException', onUnhandled);

    report('fuzz', { seed, frames: sent, connections, seconds: Math.round((Date.now() - t0) / 1000), canaryQueries: canaryOk, rssBeforeMb: rss0, peakRssMb: peak, unhandled: unhandled.length });
    expect(unhandled, `seed ${seed}`).toEqual([]);
    // A fault inside Sluice (as opposed to a refused frame) is logged as an internal error or a JS exception.
    expect(sluice.logs.filter((l) => /internal error|TypeError|RangeError|ReferenceError|at .*\.js:\d+/.test(l)), `seed ${seed}`).toEqual([]);
    expect(canaryFailed, `seed ${seed}`).toBeNull();
    expect(canaryOk).toBeGreaterThan(10);
    // Sluice still accepts and serves new sessions.
    const after = new pg.Client({ connectionString: sluice.url() });
    await after.connect();
    expect((await after.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
    await after.end();
    expect(sluice.broker.connectionCount()).toBeLessThanOrEqual(1);
  }, 600_000);
});
