/**
 * Cost of classify() per statement: cold (no cache), exact-text cache hit, template hit (same statement, other
 * literal), and the raw parser for reference. Prints numbers; asserts nothing.
 *
 *   npm run build && node dist/bench/classify.js [iterations]
 */
import { ClassificationCache } from '../src/sql/cache.js';
import { classify } from '../src/sql/classify.js';
import { DEFAULT_LIMITS, loadParser, parse } from '../src/sql/parser.js';
import { measureShape } from '../src/sql/shape.js';

const iterations = Number(process.argv[2] ?? 20_000);

function measure(label: string, run: (i: number) => unknown): number {
  for (let i = 0; i < Math.min(2_000, iterations); i++) run(i); // warm up (JIT, caches)
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) run(i);
  const us = Number(process.hrtime.bigint() - start) / 1000 / iterations;
  console.log(`${label.padEnd(58)} ${us.toFixed(2).padStart(8)} µs`);
  return us;
}

await loadParser();
const pgbench = (aid: number): string => `SELECT abalance FROM pgbench_accounts WHERE aid = ${aid};`;
const update = (aid: number, delta: number): string =>
  `UPDATE pgbench_accounts SET abalance = abalance + ${delta} WHERE aid = ${aid};`;
const orm =
  'SELECT "users"."id", "users"."email", "users"."created_at" FROM "users" ' +
  'INNER JOIN "memberships" ON "memberships"."user_id" = "users"."id" ' +
  "WHERE \"memberships\".\"org_id\" = 42 AND \"users\".\"status\" = 'active' ORDER BY \"users\".\"created_at\" DESC LIMIT 50";

console.log(`classify(), ${iterations} iterations each, Node ${process.version}`);
measure('shape pass only (pgbench SELECT)', (i) => measureShape(pgbench(i), 256, 4000));
measure('parse only (guards + WASM parse + JSON.parse)', (i) => parse(pgbench(i), DEFAULT_LIMITS));
measure('cold: pgbench SELECT, no cache', (i) => classify(pgbench(i), { cache: false }));
const exact = new ClassificationCache();
measure('cached: pgbench SELECT, same text (exact-text hit)', () => classify(pgbench(123), { cache: exact }));
const template = new ClassificationCache();
measure('cached: pgbench SELECT, aid varies (template hit)', (i) => classify(pgbench(i + 1), { cache: template }));
measure('cold: pgbench UPDATE, no cache', (i) => classify(update(i, i % 100), { cache: false }));
measure('cached: pgbench UPDATE, aid and delta vary (template hit)', (i) => classify(update(i + 1, i % 100), { cache: template }));
measure('cold: ORM SELECT with JOIN (250 chars), no cache', () => classify(orm, { cache: false }));
measure('cached: ORM SELECT with JOIN, same text', () => classify(orm, { cache: exact }));
console.log('template cache stats', template.stats);
