/**
 * Fault and load tests run a fast form under `npm test` and a long form under `npm run test:stress`
 * (SLUICE_STRESS=1). Each case reports its numbers here; scripts/stress-summary.mjs prints them as a table.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const STRESS = process.env.SLUICE_STRESS === '1';
export const RESULTS_DIR = process.env.SLUICE_STRESS_RESULTS ?? join(tmpdir(), 'sluice-stress');

/** The fast value under `npm test`, the long one under `npm run test:stress`. */
export function pick<T>(fast: T, stress: T): T {
  return STRESS ? stress : fast;
}

/** Records one case's measurements (name -> value with unit in the key, e.g. peakRssMb). */
export function report(name: string, metrics: Record<string, number | string | boolean>): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, `${name}.json`), `${JSON.stringify({ name, stress: STRESS, at: new Date().toISOString(), metrics }, null, 2)}\n`);
}

/** Open file descriptors of this process (Linux). */
export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Resident set size of this process, in MB. */
export function rssMb(): number {
  return Math.round(process.memoryUsage().rss / 1048576);
}
