/**
 * Micro-benchmark of the audit hot path: µs per statement record committed, at 1, 6 and 16 records per
 * transaction (records queued in one event-loop turn share one), with the hash chain and without it.
 * Prints numbers; asserts nothing.
 *
 *   npm run build && node dist/bench/audit.js [--records 6000] [--rounds 5]
 *
 * Variants:
 *   chain      AuditLog as shipped: chained insert (SHA-256 per row), data_version check per commit
 *              (chain_head is checkpointed by a timer, outside these commits)
 *   no-chain   the same schema and columns, plain INSERT in one transaction per turn (the pre-chain writer)
 *   hash only  chainHash() of one statement row, no database
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AuditLog, type StatementRecord } from '../src/audit/audit-log.js';
import { chainHash, GENESIS } from '../src/audit/chain.js';
import { openDataStore, type DataStore } from '../src/audit/db.js';

const { values: args } = parseArgs({ options: { records: { type: 'string', default: '6000' }, rounds: { type: 'string', default: '5' } } });
const RECORDS = Number(args.records);
const ROUNDS = Number(args.rounds);
const BATCHES = [1, 6, 16];
const SESSIONS = 16;

type Variant = 'chain' | 'no-chain';

interface Writer {
  record(records: StatementRecord[], done: (err: Error | null) => void): void;
}

function sample(sessionId: number, i: number): StatementRecord {
  return {
    sessionId, protocol: 'parse', name: '', receivedAt: Date.now(),
    text: `SELECT abalance FROM pgbench_accounts WHERE aid = $1 /*tool='bench',run='r${i % 7}'*/`,
    classes: ['read'], objects: ['r:public.pgbench_accounts'], decision: 'allow', rule: 'agents-read', reason: null,
    params: [String(i)], tags: { tool: 'bench', run: `r${i % 7}` },
  };
}

/** The pre-chain writer: same batching, same columns, no hashing, no chain bookkeeping. */
function plainWriter(db: DataStore): Writer {
  const insert = db.prepare(
    `INSERT INTO statements (session_id, seq, received_at, protocol, name, text, classes, objects, decision, rule, reason, params, tags)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const seqs = new Map<number, number>();
  let queue: { records: StatementRecord[]; done: (err: Error | null) => void }[] = [];
  const write = db.transaction((batch: typeof queue) => {
    for (const p of batch) {
      for (const r of p.records) {
        const seq = (seqs.get(r.sessionId) ?? 0) + 1;
        seqs.set(r.sessionId, seq);
        insert.run(r.sessionId, seq, r.receivedAt, r.protocol, r.name, r.text, JSON.stringify(r.classes), JSON.stringify(r.objects),
          r.decision ?? null, r.rule ?? null, r.reason ?? null, JSON.stringify(r.params), JSON.stringify(r.tags));
      }
    }
  });
  let timer: NodeJS.Immediate | null = null;
  return {
    record(records, done) {
      queue.push({ records, done });
      timer ??= setImmediate(() => {
        timer = null;
        const batch = queue;
        queue = [];
        write(batch);
        for (const p of batch) p.done(null);
      });
    },
  };
}

/** µs per record for `total` records written `perBatch` per turn (one record() call per record, as clients do). */
async function run(variant: Variant, perBatch: number, total: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-audit-'));
  const db = openDataStore(dir);
  try {
    const log = new AuditLog(db);
    const sessions = Array.from({ length: SESSIONS }, (_, i) =>
      log.openSession({ identity: `agent-${i}`, target: 'bench', clientAddr: '127.0.0.1:1', applicationName: 'pgbench' }),
    );
    const writer: Writer = variant === 'no-chain' ? plainWriter(db) : log;
    const turn = (base: number) =>
      new Promise<void>((resolve, reject) => {
        let left = perBatch;
        for (let i = 0; i < perBatch; i++) {
          writer.record([sample(sessions[(base + i) % SESSIONS]!, base + i)], (err) => {
            if (err) return reject(err);
            if (--left === 0) resolve();
          });
        }
      });
    // warm-up: page cache, prepared statements, JIT
    for (let i = 0; i < 200; i += perBatch) await turn(i);
    const start = process.hrtime.bigint();
    for (let i = 0; i < total; i += perBatch) await turn(i);
    const us = Number(process.hrtime.bigint() - start) / 1000;
    log.close();
    return us / (Math.ceil(total / perBatch) * perBatch);
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function hashOnly(n: number): number {
  const r = sample(1, 1);
  const values = [1, 1, 1, r.receivedAt, r.protocol, r.name, r.text, '["read"]', '["r:public.pgbench_accounts"]', 'allow', 'agents-read', null, '["1"]', '{"tool":"bench","run":"r1"}'];
  let prev = GENESIS;
  for (let i = 0; i < 2000; i++) prev = chainHash(prev, 'statements', values);
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) prev = chainHash(prev, 'statements', values);
  return Number(process.hrtime.bigint() - start) / 1000 / n;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const variants: Variant[] = ['no-chain', 'chain'];
const results = new Map<string, number[]>();
for (let round = 0; round < ROUNDS; round++) {
  // interleaved, so drift hits every variant alike
  for (const perBatch of BATCHES) {
    for (const v of variants) {
      const key = `${v}/${perBatch}`;
      results.set(key, [...(results.get(key) ?? []), await run(v, perBatch, RECORDS)]);
    }
  }
}

console.log(`audit hot path: µs per record (median of ${ROUNDS} rounds, ${RECORDS} records each, WAL, synchronous=NORMAL)\n`);
console.log(['records/commit', ...variants, 'chain - no-chain'].map((s) => s.padStart(18)).join(''));
for (const perBatch of BATCHES) {
  const m = variants.map((v) => median(results.get(`${v}/${perBatch}`)!));
  console.log([String(perBatch), ...m.map((x) => x.toFixed(2)), (m[1]! - m[0]!).toFixed(2)].map((s) => s.padStart(18)).join(''));
}
console.log(`\nchainHash() alone, one statement row: ${hashOnly(100_000).toFixed(2)} µs`);
