/** Child processes for the bench: long-running daemons we can stop, and CPU time read from /proc. */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';

/** Clock ticks per second, the unit of utime/stime in /proc/PID/stat. */
export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** utime+stime of a process (all its threads) in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // comm (field 2) may contain spaces and parentheses: split after the last ')'. utime/stime are fields 14/15.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
}

export interface Daemon {
  name: string;
  pid: number;
  /** Everything it printed so far (stdout and stderr interleaved), for error messages. */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Spawns a long-running process and resolves once `ready` matches its output (or, without a pattern, once
 * `port` accepts TCP connections). Rejects with its output if it exits first or does not get ready in time.
 */
export function startDaemon(
  name: string,
  cmd: string,
  args: string[],
  opts: SpawnOptions & { ready?: RegExp; port?: number; timeoutMs?: number },
): Promise<Daemon & { match: RegExpMatchArray | null }> {
  const { ready, port, timeoutMs = 30_000, ...spawnOpts } = opts;
  const child = spawn(cmd, args, { ...spawnOpts, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  const daemon: Daemon = {
    name,
    pid: child.pid ?? -1,
    output: () => out,
    stop: () => stopChild(child, exit, () => exited),
  };
  return new Promise((resolve, reject) => {
    const fail = (why: string): void => {
      clearTimeout(timer);
      void daemon.stop();
      reject(new Error(`${name} ${why}\n--- output ---\n${out.slice(-4000)}`));
    };
    const timer = setTimeout(() => fail(`not ready after ${timeoutMs} ms`), timeoutMs);
    const onData = (d: Buffer): void => {
      // Keep only the tail: a daemon that logs per statement would otherwise grow this without bound.
      out = (out + d.toString()).slice(-65536);
      const m = ready ? out.match(ready) : null;
      if (m) {
        clearTimeout(timer);
        resolve({ ...daemon, match: m });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', (e) => fail(`failed to start: ${e.message}`));
    child.once('exit', (code, signal) => fail(`exited early (code ${code}, signal ${signal})`));
    if (!ready && port !== undefined) {
      void waitForPort(port, timeoutMs).then(() => {
        if (exited) return;
        clearTimeout(timer);
        resolve({ ...daemon, match: null });
      });
    }
  });
}

async function stopChild(child: ChildProcess, exit: Promise<void>, exited: () => boolean): Promise<void> {
  if (exited() || child.pid === undefined) return;
  child.kill('SIGTERM');
  const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 5000).unref());
  if ((await Promise.race([exit, timeout])) === 'timeout') {
    child.kill('SIGKILL');
    await exit;
  }
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs a command to completion, capturing output; never throws on a non-zero exit. */
export function runCommand(
  cmd: string,
  args: string[],
  opts: SpawnOptions & { timeoutMs?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { timeoutMs, ...spawnOpts } = opts;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...spawnOpts, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = timeoutMs ? setTimeout(() => child.kill('SIGKILL'), timeoutMs) : undefined;
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Short-lived commands still running (pgbench), so an interrupt can end them too. */
const running = new Set<ChildProcess>();
export function killRunningCommands(): void {
  for (const c of running) c.kill('SIGKILL');
}
