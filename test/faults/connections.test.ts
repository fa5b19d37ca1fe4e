/**
 * Connection pressure: slow clients that never finish their startup are cut off by the auth timeout while real
 * clients still connect; more clients than the server has slots get the server's 53300 and nothing leaks (file
 * descriptors, server backends); a client reading a large result slowly keeps Sluice's memory bounded.
 */
import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startupMessage } from '../../src/protocol/messages.js';
import { startPostgres, type PgCluster } from '../harness/postgres.js';
import { startSluice, type RunningSluice } from '../harness/sluice.js';
import { waitFor } from '../integration/clients/util.js';
import { query, RawClient } from '../redteam/raw-client.js';
import { openFds, pick, report, rssMb } from './metrics.js';

const SERVER_SLOTS = pick(20, 100);
const TIMEOUT = pick(60_000, 900_000);
let cluster: PgCluster;
let sluice: RunningSluice;
beforeAll(async () => {
  cluster = await startPostgres({ maxConnections: SERVER_SLOTS });
  sluice = await startSluice(cluster, { config: { limits: { authTimeoutMs: 1500, maxClientConnections: 5000 } } });
}, 120_000);
afterAll(async () => {
  await sluice?.close();
  await cluster?.stop();
});

async function serverBackends(): Promise<number> {
  const c = new pg.Client({ connectionString: cluster.url() });
  await c.connect();
  try {
    return (await c.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")).rows[0].n as number;
  } finally {
    await c.end();
  }
}

describe('connection pressure', () => {
  it('slow clients (one byte at a time) are cut off by the auth timeout while real clients connect', async () => {
    const slow = pick(100, 500);
    const packet = startupMessage({ user: 'agent', database: 'app' });
    const sockets: net.Socket[] = [];
    let closedBySluice = 0;
    const timers: NodeJS.Timeout[] = [];
    for (let i = 0; i < slow; i++) {
      const s = net.connect({ host: '127.0.0.1', port: sluice.port });
      s.on('error', () => {});
      s.on('close', () => closedBySluice++);
      let at = 0;
      timers.push(setInterval(() => { if (at < packet.length && !s.destroyed) s.write(packet.subarray(at, ++at)); }, pick(300, 2000)));
      sockets.push(s);
    }
    // Meanwhile real clients connect and work.
    const started = Date.now();
    for (let i = 0; i < 10; i++) {
      const c = new pg.Client({ connectionString: sluice.url() });
      await c.connect();
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      await c.end();
    }
    const realMs = Date.now() - started;
    await waitFor(() => (closedBySluice === slow ? true : undefined), 'every slow client to be cut off', pick(20_000, 60_000));
    for (const t of timers) clearInterval(t);
    report('slow-clients', { slowClients: slow, cutOff: closedBySluice, realClients: 10, realClientsMs: realMs });
  }, TIMEOUT);

  it('more clients than server slots: the excess get 53300, and nothing leaks', async () => {
    const clients = pick(300, 1000); // 300 logins at once: one scrypt each would outlast the 1.5 s auth timeout
    const fds0 = openFds();
    const backends0 = await serverBackends();
    const rss0 = rssMb();
    const outcomes = await Promise.all(Array.from({ length: clients }, async () => {
      const c = new pg.Client({ connectionString: sluice.url() });
      c.on('error', () => {});
      try {
        await c.connect();
        await c.query('SELECT pg_sleep(0.3)');
        return 'ok';
      } catch (e) {
        return (e as { code?: string }).code ?? (e as Error).message;
      } finally {
        await c.end().catch(() => {});
      }
    }));
    const counts = outcomes.reduce<Record<string, number>>((m, o) => ({ ...m, [o]: (m[o] ?? 0) + 1 }), {});
    expect(Object.keys(counts).every((k) => k === 'ok' || k === '53300'), JSON.stringify(counts)).toBe(true);
    expect(counts['ok']).toBeGreaterThan(0);
    expect(counts['53300']).toBeGreaterThan(0);
    const settle = pick(10_000, 60_000);
    await waitFor(async () => ((await serverBackends()) <= backends0 ? true : undefined), 'server backends back to baseline', settle);
    await waitFor(() => (sluice.broker.connectionCount() === 0 ? true : undefined), 'Sluice to hold no connection', settle);
    await waitFor(() => (openFds() <= fds0 + 5 ? true : undefined), 'file descriptors back to baseline', settle);
    report('many-clients', { clients, serverSlots: SERVER_SLOTS, ok: counts['ok'] ?? 0, refused53300: counts['53300'] ?? 0, fdsBefore: fds0, fdsAfter: openFds(), rssBeforeMb: rss0, rssAfterMb: rssMb() });
  }, TIMEOUT);

  it('a client reading a large result slowly keeps Sluice\'s memory bounded', async () => {
    const mb = pick(200, 1024);
    const c = await RawClient.connect(sluice.port);
    await c.login('agent', sluice.key, 'app');
    // From here the socket is read by hand: bytes are counted and dropped, with pauses, so only Sluice buffers.
    c.socket.removeAllListeners('data');
    const rss0 = rssMb();
    let peak = rss0;
    const sampler = setInterval(() => { peak = Math.max(peak, rssMb()); }, 50);
    let bytes = 0;
    let tail = Buffer.alloc(0);
    const done = new Promise<void>((resolve) => {
      c.socket.on('data', (d: Buffer) => {
        bytes += d.length;
        tail = Buffer.concat([tail, d]).subarray(-6);
        if (tail.equals(Buffer.from([0x5a, 0, 0, 0, 5, 0x49]))) resolve();
        c.socket.pause();
        setTimeout(() => c.socket.resume(), 2);
      });
    });
    c.write(query(`SELECT repeat('x', 1048576) AS chunk FROM generate_series(1, ${mb})`));
    await done;
    clearInterval(sampler);
    c.destroy();
    expect(bytes).toBeGreaterThan(mb * 1048576);
    report('slow-reader', { resultMb: mb, bytesRead: bytes, rssBeforeMb: rss0, peakRssMb: peak, growthMb: peak - rss0 });
    expect(peak - rss0).toBeLessThan(150);
  }, TIMEOUT);
});
