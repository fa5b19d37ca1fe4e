/**
 * Tests that spawn bin/sluice.js need dist/ built from the current sources. Several test files (in parallel
 * vitest workers) need it; if each ran tsc, one would rewrite dist/ while another's child process was loading it.
 * So the build runs once: under a lock directory, and only when dist/ is older than the newest file under src/.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const ROOT = resolve(import.meta.dirname, '../..');
const LOCK = join(ROOT, 'dist', '.build-lock');
const STAMP = join(ROOT, 'dist', '.built-at');
/** A lock older than this was left by a killed run. */
const STALE_LOCK_MS = 5 * 60_000;

/** The newest modification time of any file under `dir`. */
export function newestMtime(dir: string): number {
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    newest = Math.max(newest, st.isDirectory() ? newestMtime(p) : st.mtimeMs);
  }
  return newest;
}

async function lock(): Promise<void> {
  mkdirSync(join(ROOT, 'dist'), { recursive: true });
  const deadline = Date.now() + 3 * 60_000;
  for (;;) {
    try {
      mkdirSync(LOCK);
      return;
    } catch {
      if (Date.now() - statSync(LOCK, { throwIfNoEntry: false })!.mtimeMs > STALE_LOCK_MS) rmSync(LOCK, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`${LOCK} held for over 3 minutes`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Builds the core into dist/ unless it is already built from the current sources. */
export async function ensureBuilt(): Promise<void> {
  await lock();
  try {
    const built = existsSync(STAMP) ? statSync(STAMP).mtimeMs : 0;
    if (built > newestMtime(join(ROOT, 'src')) && existsSync(join(ROOT, 'dist/src/cli.js'))) return;
    // tsc exits non-zero on a type error anywhere in the repo but still emits; the check is the CLI it needs.
    await promisify(execFile)('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT }).catch(() => undefined);
    if (!existsSync(join(ROOT, 'dist/src/cli.js'))) throw new Error('npx tsc -p tsconfig.json did not produce dist/src/cli.js');
    writeFileSync(STAMP, `${new Date().toISOString()}\n`);
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}
