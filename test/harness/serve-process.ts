/** `sluice serve` as a user runs it: the real bin in its own process, its output collected for the test to read. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';

const BIN = join(resolve(import.meta.dirname, '../..'), 'bin', 'sluice.js');

export interface ServeProcess {
  proc: ChildProcess;
  /** Everything written to stdout / stderr so far. */
  stdout(): string;
  stderr(): string;
  /** Exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** The first match of `re` in stdout; rejects when the process exits first or after `timeoutMs`. */
  waitForOutput(re: RegExp, what: string, timeoutMs?: number): Promise<RegExpExecArray>;
}

/** Spawns `node bin/sluice.js serve ...args` (dist/ must be built: harness/build.ts). */
export function spawnServe(args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }): ServeProcess {
  const proc = spawn(process.execPath, [BIN, 'serve', ...args], { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const waitForOutput = (re: RegExp, what: string, timeoutMs = 30_000) =>
    new Promise<RegExpExecArray>((resolveMatch, reject) => {
      const check = () => {
        const m = re.exec(out);
        if (!m) return;
        done();
        resolveMatch(m);
      };
      const timer = setTimeout(() => { done(); reject(new Error(`no ${what} after ${timeoutMs} ms:\n${out}\n${err}`)); }, timeoutMs);
      const done = () => { clearTimeout(timer); proc.stdout!.off('data', check); };
      proc.stdout!.on('data', check);
      void exited.then((code) => { done(); reject(new Error(`sluice serve exited ${code} before ${what}:\n${out}\n${err}`)); });
      check();
    });
  return { proc, stdout: () => out, stderr: () => err, exited, waitForOutput };
}
