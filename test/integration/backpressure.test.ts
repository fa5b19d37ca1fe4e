import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { passwordMessage, startupMessage } from '../../src/protocol/messages.js';
import { startPostgres, type PgCluster } from '../harness/postgres.js';
import { startSluice, type RunningSluice } from '../harness/sluice.js';

let cluster: PgCluster;
let sluice: RunningSluice;

beforeAll(async () => {
  cluster = await startPostgres();
  sluice = await startSluice(cluster);
});
afterAll(async () => {
  await sluice?.close();
  await cluster?.stop();
});

const ROWS = 300_000;
const WIDTH = 1000; // ~300 MB of DataRows in all

function query(text: string): Buffer {
  const body = Buffer.from(text + '\0', 'utf8');
  const head = Buffer.alloc(5);
  head[0] = 0x51;
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

describe('backpressure', () => {
  it('a client that stops reading makes Sluice stop reading the server, not buffer the result', async () => {
    const sock = net.connect({ host: '127.0.0.1', port: sluice.port });
    await new Promise((r) => sock.once('connect', r));
    let received = 0;
    let readyForQuery = 0;
    const onData = (d: Buffer) => {
      received += d.length;
      // 'Z' frames are 6 bytes; counting them roughly by scanning is enough to know the login finished.
      if (d.includes(Buffer.from([0x5a, 0, 0, 0, 5]))) readyForQuery++;
    };
    sock.on('data', onData);
    sock.write(startupMessage({ user: 'agent', database: 'app' }));
    await new Promise((r) => setTimeout(r, 50));
    sock.write(passwordMessage(Buffer.from(sluice.key + '\0')));
    while (readyForQuery === 0) await new Promise((r) => setTimeout(r, 20));

    const before = process.memoryUsage().arrayBuffers;
    received = 0;
    // Stop reading: the kernel buffers fill, then Sluice must stop reading the server.
    sock.pause();
    sock.write(query(`SELECT repeat('x', ${WIDTH}) FROM generate_series(1, ${ROWS})`));
    await new Promise((r) => setTimeout(r, 3000));

    const grown = process.memoryUsage().arrayBuffers - before;
    const admin = new pg.Client({ connectionString: cluster.url() });
    await admin.connect();
    const { rows } = await admin.query(
      `SELECT wait_event FROM pg_stat_activity WHERE usename = 'app' AND query LIKE 'SELECT repeat%'`,
    );
    await admin.end();
    // The backend is blocked writing to its socket: Sluice is not reading from it.
    expect(rows).toEqual([{ wait_event: 'ClientWrite' }]);
    expect(received).toBeLessThan(ROWS * WIDTH / 4);
    expect(grown).toBeLessThan(64 * 1024 * 1024);

    // Reading again delivers the whole result.
    sock.resume();
    const expectedAtLeast = ROWS * (WIDTH + 11);
    const deadline = Date.now() + 60_000;
    while (received < expectedAtLeast && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(received).toBeGreaterThanOrEqual(expectedAtLeast);
    sock.destroy();
  }, 90_000);
});
