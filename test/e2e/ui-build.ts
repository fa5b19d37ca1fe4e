import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { newestMtime } from '../harness/build.js';

export const ROOT = join(import.meta.dirname, '..', '..');
export const UI_DIR = join(ROOT, 'dist', 'renderer');

/**
 * UI tests drive the built renderer, as `sluice serve` serves it. From a clean clone (`npm ci && npm test`) there is
 * no build yet, and after an edit it is stale: build it then (Vite, a few seconds).
 */
export function ensureUiBuilt(): string {
  const index = join(UI_DIR, 'index.html');
  const sources = Math.max(newestMtime(join(ROOT, 'renderer')), newestMtime(join(ROOT, 'src', 'contract')));
  if (!existsSync(index) || statSync(index).mtimeMs < sources) {
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--config', join(ROOT, 'renderer', 'vite.config.ts')], {
      cwd: ROOT, stdio: 'pipe', timeout: 170_000,
    });
  }
  return UI_DIR;
}
