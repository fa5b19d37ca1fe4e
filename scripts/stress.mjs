#!/usr/bin/env node
// `npm run test:stress`: the long forms of the fault and load tests (test/faults, SLUICE_STRESS=1), then a summary
// table of what each case measured. Bounded: every case stops by itself (the soak runs 10 minutes).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const results = join(tmpdir(), `sluice-stress-${process.pid}`);
rmSync(results, { recursive: true, force: true });
mkdirSync(results, { recursive: true });
const run = spawnSync('npx', ['vitest', 'run', 'test/faults', ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: { ...process.env, SLUICE_STRESS: '1', SLUICE_STRESS_RESULTS: results },
});

const rows = readdirSync(results).filter((f) => f.endsWith('.json')).sort()
  .map((f) => JSON.parse(readFileSync(join(results, f), 'utf8')));
console.log('\nStress summary (long forms)\n');
for (const r of rows) {
  console.log(`${r.name}`);
  for (const [k, v] of Object.entries(r.metrics)) console.log(`  ${k.padEnd(24)} ${String(v)}`);
}
if (rows.length === 0) console.log('(no case reported results)');
console.log(`\nvitest exit code: ${run.status}`);
rmSync(results, { recursive: true, force: true });
process.exit(run.status ?? 1);
