/**
 * npm start's default: `sluice serve` with no config starts the embedded demo (PGlite behind Sluice) and prints a
 * psql command line. That line is the first thing a new user pastes, so it is run as printed, through a shell.
 *
 * Isolation: the demo keeps its data in ./.sluice/demo of the working directory (src/demo.ts demoDataDir) and looks
 * for ./sluice.yaml and $SLUICE_CONFIG, so the process runs in an empty temp dir without SLUICE_CONFIG, with HOME
 * there too (psql reads ~/.psqlrc and ~/.pgpass). `--port 0` takes a free port instead of the demo's 6432; the
 * operator API falls back to a free port by itself when ui.port (6433) is taken.
 */
import { exec, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../harness/build.js';
import { PG_BIN } from '../harness/postgres.js';
import { spawnServe } from '../harness/serve-process.js';


let dir: string;
let child: ChildProcess | undefined;

/** The caller's environment minus what would point psql or Sluice elsewhere (PG*, SLUICE_CONFIG), HOME in `home`. */
function isolatedEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG') && k !== 'SLUICE_CONFIG') env[k] = v;
  // psql as a user would find it; Debian keeps a copy with the server binaries when the client package is absent.
  return { ...env, HOME: home, LC_ALL: 'C', PATH: `${env.PATH ?? ''}:${PG_BIN}` };
}

/** Runs `line` with /bin/sh as a user pasting it would; resolves with its exit code and output, never rejects. */
function shell(line: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    exec(line, { cwd: dir, env, timeout: 30_000 }, (err, stdout, stderr) => {
      resolveRun({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  await ensureBuilt(); // bin/sluice.js runs dist/
  dir = mkdtempSync(join(tmpdir(), 'sluice-demo-'));
}, 180_000);
afterAll(() => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('sluice serve without a config (the embedded demo)', () => {
  it('prints a psql line that works as pasted, refuses a wrong key, keeps its data in ./.sluice/demo', async () => {
    const env = isolatedEnv(dir);
    const serve = spawnServe(['--port', '0'], { cwd: dir, env });
    const proc = serve.proc;
    child = proc;
    // PGlite compiles and seeds its database first: seconds, more on a busy machine.
    const line = (await serve.waitForOutput(/^ {2}(PGPASSWORD=\S+ psql "[^"\n]*")$/m, 'psql line', 90_000))[1]!;
    const stdout = serve.stdout();
    expect(stdout).toMatch(/No config file given.*starting the embedded demo database/);
    const listening = /sluice listening on 127\.0\.0\.1:(\d+) \(targets: shop; data: (.+)\)/.exec(stdout);
    expect(listening, stdout).not.toBeNull();
    const port = Number(listening![1]);
    // The line names the port actually bound (not 0, not the demo default) and the demo's identity and target.
    expect(line).toContain(` port=${port} `);
    expect(line).toMatch(/^PGPASSWORD=sk_[A-Za-z0-9_-]{43} psql "host=127\.0\.0\.1 port=\d+ user=demo-agent dbname=shop sslmode=disable"$/);
    expect(listening![2]).toBe(join(dir, '.sluice', 'demo'));

    // As pasted, with a query appended: the seeded customers are there (4 of them).
    const ok = await shell(`${line} -c "SELECT count(*) FROM customers"`, env);
    expect({ code: ok.code, stderr: ok.stderr }).toEqual({ code: 0, stderr: '' });
    expect(ok.stdout).toMatch(/^ count \n-------\n {5}4\n\(1 row\)\n/);

    // Another key in the same line is refused at login.
    const wrongLine = line.replace(/PGPASSWORD=\S+/, `PGPASSWORD=sk_${'A'.repeat(43)}`);
    const refused = await shell(`${wrongLine} -c "SELECT 1"`, env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/FATAL: {2}password authentication failed for user "demo-agent"/);
    // psql does not show a login error's SQLSTATE; a driver does.
    const wrong = new pg.Client({ host: '127.0.0.1', port, user: 'demo-agent', database: 'shop', password: `sk_${'A'.repeat(43)}`, ssl: false });
    await expect(wrong.connect()).rejects.toMatchObject({ code: '28P01' });

    proc.kill('SIGTERM');
    expect(await serve.exited).toBe(0);

    // Everything it keeps is under the temp working directory, and the pasted query is in the audit store there.
    const db = new Database(join(dir, '.sluice', 'demo', 'sluice.db'), { readonly: true });
    try {
      const texts = db.prepare('SELECT text FROM statements').all().map((r) => (r as { text: string }).text);
      expect(texts).toContain('SELECT count(*) FROM customers');
    } finally {
      db.close();
    }
  }, 150_000);
});
