import { unwatchFile, watchFile, type Stats } from 'node:fs';
import { loadConfig } from './load.js';
import type { SluiceConfig } from './model.js';

/**
 * Watches the config file and hands every valid version to `onConfig`; a broken edit goes to `onError` (with
 * FILE:LINE:COL: reason from ConfigError) and nothing is applied, so the running config stays.
 * Polls the file's stat rather than using fs.watch: editors save by writing a new file and renaming it over the
 * old one, which an inode watch loses.
 */
export function watchConfig(
  path: string,
  onConfig: (config: SluiceConfig) => void,
  onError: (err: Error) => void,
  intervalMs = 500,
): { check(): void; close(): void } {
  const check = (): void => {
    let config: SluiceConfig;
    try {
      config = loadConfig(path);
    } catch (err) {
      onError(err as Error);
      return;
    }
    onConfig(config);
  };
  const listener = (cur: Stats, prev: Stats): void => {
    if (cur.mtimeMs !== prev.mtimeMs || cur.size !== prev.size || cur.ino !== prev.ino) check();
  };
  watchFile(path, { interval: intervalMs, persistent: false }, listener);
  return { check, close: () => unwatchFile(path, listener) };
}
