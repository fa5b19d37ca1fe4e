/**
 * `sluice token` and `sluice exec` against a real issuer and a running Sluice: the token printed works, and
 * `sluice exec -- psql` connects through Sluice with the PG* variables it sets.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../../src/cli.js';
import { AUDIENCE, CLIENTS } from '../../harness/oidc.js';
import { PSQL } from '../clients/util.js';
import { lastSession, query, startOidcEnv, type OidcEnv } from './helpers.js';

const SECRET_ENV = 'SLUICE_TEST_CI_SECRET';

let env: OidcEnv;
let dir: string;
let config: string;
beforeAll(async () => {
  env = await startOidcEnv({ name: 'test-idp' });
  dir = mkdtempSync(join(tmpdir(), 'sluice-oidc-cli-'));
  config = join(dir, 'sluice.yaml');
  // The CLI reads the same kind of file the broker runs with: listen address, targets and trusted issuers.
  writeFileSync(config, [
    'listen: { host: 127.0.0.1, port: ' + env.sluice.port + ' }',
    'dataDir: ./data',
    'targets:',
    `  - { name: app, host: 127.0.0.1, port: ${env.cluster.port}, database: app, user: app }`,
    'oidc:',
    '  issuers:',
    `    - { issuer: "${env.idp.issuer}", name: test-idp, audience: ${AUDIENCE}, identityClaim: client_id }`,
    '',
  ].join('\n'));
  process.env[SECRET_ENV] = CLIENTS.ci.secret;
});
afterAll(async () => {
  delete process.env[SECRET_ENV];
  await env?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { log: (s) => out.push(s), error: (s) => err.push(s) });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

const TOKEN_ARGS = ['--client-id', 'ci', '--client-secret-env', SECRET_ENV, '--resource', AUDIENCE];

describe('sluice token', () => {
  it('prints only the token on stdout, and it logs in through Sluice', async () => {
    const r = await cli('token', '--config', config, '--issuer', 'test-idp', ...TOKEN_ARGS);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(r.stderr).toMatch(/expires in \d+ s/);
    expect(await query(env, 'ci', r.stdout, 'SELECT 5 AS five')).toEqual([{ five: 5 }]);
  });

  it('takes the issuer URL without a config file', async () => {
    const r = await cli('token', '--issuer', env.idp.issuer, ...TOKEN_ARGS);
    expect(r.code).toBe(0);
    expect(await query(env, 'ci', r.stdout, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
  });

  it('a wrong client secret fails with the issuer\'s answer (exit 1), printing no token', async () => {
    process.env.SLUICE_TEST_WRONG = 'not-the-secret';
    const r = await cli('token', '--issuer', env.idp.issuer, '--client-id', 'ci', '--client-secret-env', 'SLUICE_TEST_WRONG');
    expect(r).toMatchObject({ code: 1, stdout: '' });
    expect(r.stderr).toMatch(/refused the client-credentials grant for client ci: invalid_client/);
  });
});

describe('sluice exec', () => {
  it('runs psql through Sluice with the token: select 1 works end to end and the session is the token\'s identity', async () => {
    const outFile = join(dir, 'psql.out');
    const r = await cli('exec', '--config', config, '--target', 'app', '--issuer', 'test-idp', ...TOKEN_ARGS, '--',
      PSQL, '-X', '-w', '-tA', '-c', 'select 1', '-o', outFile);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(readFileSync(outFile, 'utf8')).toBe('1\n');
    expect(lastSession(env)).toMatchObject({ identity: 'ci', endReason: 'client terminated' });
  });

  it('sets PGHOST, PGPORT, PGUSER, PGDATABASE and PGPASSWORD, and exits with the command\'s code', async () => {
    const outFile = join(dir, 'env.out');
    const r = await cli('exec', '--config', config, '--target', 'app', '--issuer', env.idp.issuer, ...TOKEN_ARGS, '--',
      'sh', '-c', `printf '%s %s %s %s %s' "$PGHOST" "$PGPORT" "$PGUSER" "$PGDATABASE" "\${PGPASSWORD%%.*}" > '${outFile}'; exit 7`);
    expect(r.code).toBe(7);
    expect(readFileSync(outFile, 'utf8')).toBe(`127.0.0.1 ${env.sluice.port} ci app ${Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'at+jwt', kid: env.idp.currentKid() })).toString('base64url')}`);
  });

  it('a command that does not exist exits 127', async () => {
    const r = await cli('exec', '--config', config, '--target', 'app', '--issuer', 'test-idp', ...TOKEN_ARGS, '--', 'no-such-command-sluice');
    expect(r.code).toBe(127);
    expect(r.stderr).toMatch(/cannot run no-such-command-sluice: command not found/);
  });
});

describe('usage', () => {
  it.each([['token', '--help'], ['exec', '--help']])('%s %s exits 0 with its options', async (...argv) => {
    const r = await cli(...argv);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--issuer[\s\S]*--client-id[\s\S]*--client-secret-env[\s\S]*--scope[\s\S]*--resource/);
  });

  it('the command list names token and exec', async () => {
    expect((await cli('--help')).stdout).toMatch(/sluice token[\s\S]*sluice exec/);
  });

  it.each([
    [['exec', '--target', 'app', '--issuer', 'test-idp', ...TOKEN_ARGS], /no command given/],
    [['exec', '--issuer', 'test-idp', ...TOKEN_ARGS, '--', 'true'], /--target is required/],
    [['exec', '--target', 'nope', '--issuer', 'test-idp', ...TOKEN_ARGS, '--', 'true'], /no target "nope"/],
    [['exec', '--target', 'app', '--issuer', 'http://127.0.0.1:1/other', ...TOKEN_ARGS, '--', 'true'], /not in the config's oidc.issuers/],
    [['token', '--client-id', 'ci'], /--issuer is required/],
    [['token', '--issuer', 'test-idp', '--client-id', 'ci', '--client-secret-env', 'SLUICE_TEST_UNSET_VAR'], /SLUICE_TEST_UNSET_VAR is not set/],
    [['token', '--issuer', 'http://idp.example.com', ...TOKEN_ARGS], /http on a non-loopback host/],
    [['token', '--issuer', 'test-idp', '--bogus', ...TOKEN_ARGS], /bogus/],
  ])('%j exits 2 with a message', async (argv, message) => {
    const r = await cli(argv[0]!, '--config', config, ...argv.slice(1)); // before any `--`
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });
});
