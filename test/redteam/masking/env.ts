/**
 * The masking red-team environment: a PostgreSQL whose masked columns hold canary strings, a Sluice with the
 * masking rules of the integration fixture, and a recording TCP tap between every client and Sluice, so a test
 * can assert on every byte Sluice sent to a client (and on the audit database file).
 */
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { expect } from 'vitest';
import { startPostgres, type PgCluster } from '../../harness/postgres.js';
import { startSluice, type RunningSluice } from '../../harness/sluice.js';
import { CANARY, MASKING, SETUP_SQL } from '../../integration/masking/fixture.js';
import type { MaskingInput } from '../../../src/masking/model.js';

export { CANARY };

/** Records every byte Sluice sends towards clients that connect through it. */
export class Tap {
  private readonly server: net.Server;
  readonly toClient: Buffer[] = [];
  port = 0;

  constructor(private readonly upstreamPort: number) {
    this.server = net.createServer((client) => {
      const up = net.connect({ host: '127.0.0.1', port: this.upstreamPort });
      client.on('data', (d: Buffer) => up.write(d));
      up.on('data', (d: Buffer) => {
        this.toClient.push(Buffer.from(d));
        client.write(d);
      });
      const end = () => { client.destroy(); up.destroy(); };
      client.on('close', end);
      up.on('close', end);
      client.on('error', end);
      up.on('error', end);
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  /** Everything sent to clients so far, as one buffer. */
  bytes(): Buffer {
    return Buffer.concat(this.toClient);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

export interface MaskEnv {
  cluster: PgCluster;
  sluice: RunningSluice;
  tap: Tap;
  /** URL through the tap. */
  url(opts?: { user?: string; password?: string }): string;
  /** Operator decisions asked for so far (approval requests). */
  approvals: { statement: string; maskedColumns: string[] }[];
  stop(): Promise<void>;
}

export async function startMaskEnv(masking: MaskingInput = MASKING, extraSql = ''): Promise<MaskEnv> {
  const cluster = await startPostgres();
  await cluster.sql(SETUP_SQL + extraSql, 'app');
  const sluice = await startSluice(cluster, { config: { masking } });
  const approvals: MaskEnv['approvals'] = [];
  // Whatever masking sends to review is denied at once, and recorded.
  sluice.broker.events.on((e) => {
    if (e.type !== 'approval_requested') return;
    approvals.push({ statement: e.approval.statement, maskedColumns: [...e.approval.maskedColumns] });
    sluice.broker.approvals.decide(e.approval.id, { decision: 'deny', reason: 'no operator approves in this test' }, 'test');
  });
  const tap = new Tap(sluice.port);
  await tap.listen();
  return {
    cluster, sluice, tap, approvals,
    url: ({ user = 'agent', password = sluice.key } = {}) =>
      `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${tap.port}/app?sslmode=disable`,
    async stop() {
      await tap.close();
      await sluice.close();
      await cluster.stop();
    },
  };
}

const CANARIES = Object.values(CANARY).map((c) => c.toLowerCase());

/** Which canaries appear in `bytes` (any letter case: upper()/lower() must not slip through). */
export function canariesIn(bytes: Buffer): string[] {
  const text = bytes.toString('latin1').toLowerCase();
  return CANARIES.filter((c) => text.includes(c));
}

export function expectNoCanary(bytes: Buffer, what: string): void {
  expect(canariesIn(bytes), `${what}: canary bytes reached the client`).toEqual([]);
}

/** The audit database files (SQLite main file, WAL, journal) as they are on disk now. */
export function auditBytes(sluice: RunningSluice): Buffer {
  const files = readdirSync(sluice.dataDir).filter((f) => /\.(db|sqlite|sqlite3)(-wal|-shm|-journal)?$/.test(f) || f.endsWith('-wal'));
  expect(files.length, 'audit database files found').toBeGreaterThan(0);
  return Buffer.concat(files.map((f) => readFileSync(join(sluice.dataDir, f))));
}
