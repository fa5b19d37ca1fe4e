import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../../src/cli.js';
import { ensureBuilt } from '../../harness/build.js';
import { spawnServe } from '../../harness/serve-process.js';
import { startPostgres, type PgCluster } from '../../harness/postgres.js';

const run = promisify(execFile);

/** Runs the CLI in this process with stdout/stderr captured (fast; the spawn test below covers bin/). */
async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { log: (s) => out.push(s), error: (s) => err.push(s) });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

let dir: string;
let config: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-cli-'));
  config = join(dir, 'sluice.yaml');
  // Key commands only need a valid file and its dataDir; nothing connects.
  writeFileSync(config, ['dataDir: ./data', 'targets:', '  - name: shop', '    host: 127.0.0.1', '    database: shop', '    user: app', ''].join('\n'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('help and usage errors', () => {
  it.each([
    [['--help']], [['help']], [['serve', '--help']], [['key', '--help']],
    [['key', 'add', '--help']], [['key', 'list', '--help']], [['key', 'revoke', '--help']],
  ])('%j exits 0 and prints usage', async (argv) => {
    const r = await cli(...argv);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/sluice (serve|key)/);
  });

  it('each command\'s help names its own options', async () => {
    expect((await cli('serve', '--help')).stdout).toMatch(/--port/);
    expect((await cli('key', 'add', '--help')).stdout).toMatch(/--groups[\s\S]*--expires/);
    expect((await cli('key', 'list', '--help')).stdout).toMatch(/--json/);
  });

  it('no command prints usage and fails', async () => {
    const r = await cli();
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/Usage:/);
  });

  it('an unknown command or key subcommand exits 2', async () => {
    expect(await cli('frobnicate')).toMatchObject({ code: 2, stderr: expect.stringMatching(/unknown command "frobnicate"/) });
    expect(await cli('key', 'rotate')).toMatchObject({ code: 2, stderr: expect.stringMatching(/unknown key command "rotate"/) });
  });

  it('an unknown option or a missing argument exits 2 with the command\'s usage', async () => {
    expect(await cli('key', 'list', '--bogus', '--config', config)).toMatchObject({ code: 2, stderr: expect.stringMatching(/bogus[\s\S]*sluice key list/) });
    expect(await cli('key', 'add', '--config', config)).toMatchObject({ code: 2, stderr: expect.stringMatching(/expected 1 argument/) });
    expect(await cli('serve', '--config', config, '--port', 'abc')).toMatchObject({ code: 2, stderr: expect.stringMatching(/--port/) });
  });
});

describe('key add / list / revoke', () => {
  it('add prints the sk_ secret once on stdout; list shows the key active without it', async () => {
    const add = await cli('key', 'add', 'ci-bot', '--groups', 'ci,readers', '--config', config);
    expect(add.code).toBe(0);
    expect(add.stdout).toMatch(/^sk_[A-Za-z0-9_-]{43}$/); // stdout is just the secret, for scripts
    expect(add.stderr).toMatch(/created/);
    expect(add.stderr).not.toContain(add.stdout);

    const list = await cli('key', 'list', '--config', config);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^ci-bot\tactive\tci,readers\t-\t-$/m);
    expect(list.stdout).not.toContain(add.stdout);
    expect(list.stdout).not.toMatch(/sk_/);

    const json = await cli('key', 'list', '--json', '--config', config);
    expect(json.stdout).not.toMatch(/sk_|hash|salt/);
    const rows = JSON.parse(json.stdout) as Array<Record<string, unknown>>;
    expect(rows.find((r) => r.name === 'ci-bot')).toMatchObject({ status: 'active', groups: ['ci', 'readers'], expiresAt: null, revokedAt: null });
  });

  it('refuses a second active key with the same name', async () => {
    await cli('key', 'add', 'twice', '--config', config);
    const again = await cli('key', 'add', 'twice', '--config', config);
    expect(again.code).not.toBe(0);
    expect(again.stdout).toBe('');
    expect(again.stderr).toMatch(/already exists/);
  });

  it('revoke makes list show it revoked; revoking again fails', async () => {
    await cli('key', 'add', 'leaver', '--config', config);
    expect(await cli('key', 'revoke', 'leaver', '--config', config)).toMatchObject({ code: 0, stdout: expect.stringMatching(/revoked "leaver"/) });
    expect((await cli('key', 'list', '--config', config)).stdout).toMatch(/^leaver\trevoked\t/m);
    const rows = JSON.parse((await cli('key', 'list', '--json', '--config', config)).stdout) as Array<Record<string, unknown>>;
    expect(rows.find((r) => r.name === 'leaver')).toMatchObject({ status: 'revoked', revokedAt: expect.any(Number) });
    expect(await cli('key', 'revoke', 'leaver', '--config', config)).toMatchObject({ code: 1, stderr: expect.stringMatching(/no active key/) });
  });

  it('--expires 30d sets the expiry 30 days ahead', async () => {
    const before = Date.now();
    const add = await cli('key', 'add', 'temp', '--expires', '30d', '--config', config);
    const after = Date.now();
    expect(add.code).toBe(0);
    expect(add.stderr).toMatch(/expires \d{4}-\d\d-\d\dT/);
    const row = (JSON.parse((await cli('key', 'list', '--json', '--config', config)).stdout) as Array<{ name: string; expiresAt: number }>)
      .find((r) => r.name === 'temp')!;
    const day = 86_400_000;
    expect(row.expiresAt).toBeGreaterThanOrEqual(before + 30 * day);
    expect(row.expiresAt).toBeLessThanOrEqual(after + 30 * day);
  });

  it.each(['30', 'tomorrow', '0d', '-5d'])('a bad --expires %j exits 2 with a message and creates nothing', async (bad) => {
    // `--expires=X` so that "-5d" reaches the parser instead of being taken for an option.
    const r = await cli('key', 'add', 'bad-expiry', `--expires=${bad}`, '--config', config);
    expect(r.stderr).toMatch(/invalid duration/);
    expect(r.stdout).not.toMatch(/sk_/);
    expect((await cli('key', 'list', '--config', config)).stdout).not.toMatch(/bad-expiry/);
    // A bad option value is a usage error like any other (exit 2), not an internal failure (exit 1).
    expect(r.code).toBe(2);
  });

  it('an invalid key name is refused and creates nothing', async () => {
    const r = await cli('key', 'add', 'no spaces allowed', '--config', config);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/invalid key name/);
    expect((await cli('key', 'list', '--config', config)).stdout).not.toMatch(/no spaces/);
  });
});

describe('a broken config file', () => {
  it('exits 2 naming FILE:LINE of the wrong type, for key commands and serve', async () => {
    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, [
      'listen:',
      '  host: 127.0.0.1',
      '  port: 6432',
      'limits:',
      '  maxClientConnections: lots', // line 5: a string where an integer belongs
      'targets:',
      '  - { name: shop, host: 127.0.0.1, database: shop, user: app }',
      '',
    ].join('\n'));
    for (const argv of [['key', 'list'], ['serve']]) {
      const r = await cli(...argv, '--config', broken);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${broken}:5:`);
      expect(r.stderr).toMatch(/maxClientConnections/);
    }
  });

  it('exits 2 for a config file that does not exist', async () => {
    const missing = join(dir, 'nope.yaml');
    expect(await cli('key', 'list', '--config', missing)).toMatchObject({ code: 2, stderr: expect.stringContaining(`${missing}:1:1: cannot read config file`) });
  });
});

describe('sluice serve (the real bin, spawned)', () => {
  let cluster: PgCluster;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    await ensureBuilt(); // bin/sluice.js runs dist/
    cluster = await startPostgres();
  }, 180_000);
  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await cluster?.stop();
  });

  it('starts, prints "listening on", serves psql with a created key, and exits 0 on SIGTERM', async () => {
    const cfg = join(dir, 'serve.yaml');
    writeFileSync(cfg, [
      'listen: { host: 127.0.0.1, port: 0 }',
      'dataDir: ./serve-data',
      'targets:',
      '  - name: app',
      '    host: 127.0.0.1',
      `    port: ${cluster.port}`,
      '    database: app',
      '    user: app',
      '    password: { env: CLI_TEST_PG_PASSWORD }',
      '    tls: { mode: disable }',
      'policy:',
      '  rules:',
      '    - name: readers',
      '      match: { identities: [psql-agent] }',
      '      allow: [read]',
      '',
    ].join('\n'));
    const secret = (await cli('key', 'add', 'psql-agent', '--config', cfg)).stdout;
    expect(secret).toMatch(/^sk_/);

    const serve = spawnServe(['--config', cfg], { cwd: dir, env: { ...process.env, CLI_TEST_PG_PASSWORD: cluster.roles.app.password } });
    const proc = serve.proc;
    child = proc;
    const port = Number((await serve.waitForOutput(/listening on 127\.0\.0\.1:(\d+)/, '"listening on"'))[1]);

    const psql = (sql: string) => run('psql', ['-X', '-At', '-c', sql, `host=127.0.0.1 port=${port} user=psql-agent dbname=app sslmode=disable`], {
      env: { ...process.env, PGPASSWORD: secret, PGCONNECT_TIMEOUT: '10' },
    });
    expect((await psql('SELECT current_user')).stdout.trim()).toBe('app');
    // The config's policy is in force: reads pass, anything else is refused by default.
    await expect(psql('CREATE TABLE cli_t (i int)')).rejects.toMatchObject({ stderr: expect.stringMatching(/ERROR:  Sluice policy refuses ddl.*default-deny/) });

    // Revoking from another process applies to the running broker's next connection.
    expect((await cli('key', 'revoke', 'psql-agent', '--config', cfg)).code).toBe(0);
    await expect(psql('SELECT 1')).rejects.toMatchObject({ stderr: expect.stringMatching(/password authentication failed.*revoked/) });

    proc.kill('SIGTERM');
    expect(await serve.exited).toBe(0);
    expect(serve.stdout()).toMatch(/SIGTERM: shutting down/);
  });
});
