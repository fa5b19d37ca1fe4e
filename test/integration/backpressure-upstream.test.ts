/**
 * The other half of backpressure.test.ts: a server that stops reading makes Sluice stop reading the client.
 * During COPY FROM STDIN a client may stream without waiting for any answer, so nothing but TCP flow control
 * keeps Sluice from reading the whole stream into memory while the backend takes its time. Here the backend is
 * made slow by a trigger that sleeps per row; the client floods CopyData and the bytes the kernel took from it
 * must stop at what the socket buffers of both hops can hold, far below the flood.
 */
import { readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgCluster } from '../harness/postgres.js';
import { startSluice, type RunningSluice } from '../harness/sluice.js';
import { query, RawClient, sleep, typedMessage } from '../redteam/raw-client.js';

const MiB = 1024 * 1024;

/** Largest a loopback socket's kernel buffer can grow to (autotuning): the third field of tcp_rmem / tcp_wmem. */
function tcpMax(name: 'tcp_rmem' | 'tcp_wmem'): number {
  return Number(readFileSync(`/proc/sys/net/ipv4/${name}`, 'utf8').trim().split(/\s+/)[2]);
}
// client -> Sluice and Sluice -> PostgreSQL: each hop holds at most a send buffer and a receive buffer. Sluice itself
// may hold one read chunk and one socket write queue beyond that; 8 MiB of slack covers those and what the
// backend has consumed. Anything more was read by Sluice on behalf of a server that is not reading.
const KERNEL_BOUND = 2 * (tcpMax('tcp_rmem') + tcpMax('tcp_wmem')) + 8 * MiB;
const FLOOD = Math.max(256 * MiB, 3 * KERNEL_BOUND);

let cluster: PgCluster;
let sluice: RunningSluice;

beforeAll(async () => {
  cluster = await startPostgres();
  // Created as the superuser: every row waits 200 ms before it is stored, so the backend reads COPY data far
  // slower than anyone can send it.
  await cluster.sql(`
    CREATE TABLE slow_sink (id int, pad text);
    CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.2); RETURN NEW; END $$;
    CREATE TRIGGER slow_row BEFORE INSERT ON slow_sink FOR EACH ROW EXECUTE FUNCTION slow_row();
    ALTER TABLE slow_sink OWNER TO app;
  `, 'app');
  sluice = await startSluice(cluster);
}, 120_000);
afterAll(async () => {
  // Bounded: a client connection Sluice never lets go (see the last assertion) would keep close() waiting forever.
  if (sluice) await Promise.race([sluice.close(), sleep(10_000)]);
  if (sluice) rmSync(sluice.dataDir, { recursive: true, force: true });
  await cluster?.stop();
});

/** One CopyData message of about 64 KiB holding whole text-format rows of slow_sink. */
function copyDataOfRows(): Buffer {
  const row = `1\t${'x'.repeat(1000)}\n`;
  return typedMessage('d', Buffer.from(row.repeat(Math.floor((64 * 1024 - 5) / row.length))));
}

/**
 * Writes `frame` until `total` bytes are out or the kernel stops taking them (no write completed for `stallMs`).
 * Only one write is queued in Node at a time beyond its highWaterMark, and it is the same Buffer each time, so
 * the sender holds no copies: the count is what left this socket for the kernel and, past it, for Sluice.
 */
async function flood(socket: net.Socket, frame: Buffer, total: number, stallMs: number): Promise<number> {
  let flushed = 0;
  let lastProgress = Date.now();
  let stopped = false;
  void (async () => {
    for (let sent = 0; sent < total && !stopped && !socket.destroyed; sent += frame.length) {
      const more = socket.write(frame, (err) => {
        if (!err) { flushed += frame.length; lastProgress = Date.now(); }
      });
      if (!more) await drainOrClose(socket); // after a stall: until the socket is destroyed
    }
  })();
  while (flushed < total && Date.now() - lastProgress < stallMs && !socket.destroyed) await sleep(100);
  stopped = true;
  return flushed;
}

function drainOrClose(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => { socket.off('drain', done); socket.off('close', done); resolve(); };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

async function superuser<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: cluster.url() });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

describe('backpressure towards the server', () => {
  it('a server that stops reading makes Sluice stop reading the client (COPY FROM STDIN flood)', async () => {
    const c = await RawClient.connect(sluice.port);
    await c.login('agent', sluice.key, 'app');
    c.write(query('COPY slow_sink FROM STDIN'));
    expect((await c.frame()).code).toBe('G'); // CopyInResponse: the COPY is allowed and the backend waits for data

    const before = process.memoryUsage().arrayBuffers;
    const accepted = await flood(c.socket, copyDataOfRows(), FLOOD, 1500);
    const grown = process.memoryUsage().arrayBuffers - before;

    // The flood stalled with the session alive: the backend is still in its COPY, and nothing came back.
    expect(c.closed).toBe(false);
    expect(c.pending.length).toBe(0);
    const copying = await superuser((s) => s.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE usename = 'app' AND state = 'active' AND query LIKE 'COPY slow_sink%'`,
    ));
    expect(copying.rows).toHaveLength(1);

    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThan(KERNEL_BOUND);
    // Sluice runs in this process: what it buffered would show as Buffer memory here. Garbage not yet collected is
    // at most what passed through, itself under KERNEL_BOUND.
    expect(grown).toBeLessThan(KERNEL_BOUND);

    await superuser((s) => s.query('SELECT pg_terminate_backend($1)', [copying.rows[0]!.pid]));
    c.destroy();

    // The broker is unharmed: a new session works.
    const after = new pg.Client({ connectionString: sluice.url() });
    await after.connect();
    try {
      expect((await after.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await after.end();
    }

    // With its server and its client gone, the flooded session lets go of its client connection. Sluice must not
    // wait for an EOF it can only see by reading, and it stopped reading this client for the server's sake.
    for (let i = 0; i < 100 && sluice.broker.connectionCount() > 0; i++) await sleep(100);
    expect(sluice.broker.connectionCount(), 'client connections Sluice still holds').toBe(0);
  }, 120_000);
});
