import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../../../src/config/load.js';

const FILE = '/etc/sluice/sluice.yaml';
const lines = (...l: string[]) => `${l.join('\n')}\n`;
const MINIMAL = lines('targets:', '  - name: shop', '    host: db.internal', '    database: shop', '    user: app');

function configError(text: string): ConfigError {
  try {
    parseConfig(text, FILE);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('parseConfig: valid files', () => {
  it('applies every default to a minimal config', () => {
    const config = parseConfig(MINIMAL, FILE);
    expect(config).toEqual({
      listen: { host: '127.0.0.1', port: 6432 },
      dataDir: '/etc/sluice/.sluice',
      limits: {
        maxClientConnections: 200,
        maxMessageBytes: 16777216,
        maxServerMessageBytes: 1073741824,
        authTimeoutMs: 10000,
        connectTimeoutMs: 10000,
      },
      targets: [{ name: 'shop', host: 'db.internal', port: 5432, database: 'shop', user: 'app', tls: { mode: 'prefer' } }],
      ui: { port: 6433 },
    });
    expect(config.tls).toBeUndefined();
    expect(config.targets[0]?.password).toBeUndefined();
  });

  it('keeps every explicit setting of a full config and resolves relative paths against the file', () => {
    const text = lines(
      'listen: { host: "::1", port: 7000 }',
      'dataDir: ../state',
      'tls:',
      '  cert: certs/server.crt',
      '  key: /abs/server.key',
      'limits:',
      '  maxClientConnections: 5',
      '  maxMessageBytes: 1024',
      '  maxServerMessageBytes: 2048',
      '  authTimeoutMs: 100',
      '  connectTimeoutMs: 600000',
      'targets:',
      '  - name: shop',
      '    host: 10.0.0.5',
      '    port: 5433',
      '    database: shop',
      '    user: app',
      '    password: { env: SHOP_PG_PASSWORD }',
      '    tls: { mode: verify-full, ca: ./ca.pem }',
      '  - name: ci.db-2',
      '    host: localhost',
      '    database: ci',
      '    user: ci',
      '    password: { file: secrets/ci }',
      '    tls: { mode: disable }',
    );
    const config = parseConfig(text, FILE);
    expect(config.listen).toEqual({ host: '::1', port: 7000 });
    expect(config.dataDir).toBe('/etc/state');
    expect(config.tls).toEqual({ cert: '/etc/sluice/certs/server.crt', key: '/abs/server.key' });
    expect(config.limits).toEqual({
      maxClientConnections: 5,
      maxMessageBytes: 1024,
      maxServerMessageBytes: 2048,
      authTimeoutMs: 100,
      connectTimeoutMs: 600000,
    });
    expect(config.targets).toEqual([
      {
        name: 'shop',
        host: '10.0.0.5',
        port: 5433,
        database: 'shop',
        user: 'app',
        password: { env: 'SHOP_PG_PASSWORD' },
        tls: { mode: 'verify-full', ca: '/etc/sluice/ca.pem' },
      },
      {
        name: 'ci.db-2',
        host: 'localhost',
        port: 5432,
        database: 'ci',
        user: 'ci',
        password: { file: '/etc/sluice/secrets/ci' },
        tls: { mode: 'disable' },
      },
    ]);
  });

  it('accepts port 0 for the listener (pick a free port) and localhost', () => {
    const config = parseConfig(`listen: { host: localhost, port: 0 }\n${MINIMAL}`, FILE);
    expect(config.listen).toEqual({ host: 'localhost', port: 0 });
  });
});

describe('parseConfig: broken files point at the offending line', () => {
  it('reports a YAML syntax error with its position', () => {
    const err = configError(lines('targets:', '  - name: shop', '    host: [unclosed', '    user: app'));
    expect(err.line).toBeGreaterThanOrEqual(3);
    expect(err.reason).toMatch(/^YAML syntax error: /);
    expect(err.message).toMatch(new RegExp(`^${FILE}:\\d+:\\d+: YAML syntax error: `));
    expect(err.message).not.toContain('\n\n');
  });

  it('reports a duplicate YAML key as a syntax error on the second key', () => {
    const err = configError(lines('dataDir: a', 'dataDir: b', ...MINIMAL.trim().split('\n')));
    expect(err.line).toBe(2);
    expect(err.reason).toMatch(/unique/);
  });

  it('reports a wrong type on its line', () => {
    const err = configError(lines('targets:', '  - name: shop', '    host: db', '    port: "five"', '    database: shop', '    user: app'));
    expect(err.message).toBe(`${FILE}:4:11: targets[0].port: expected a number, got a string`);
    expect(err).toMatchObject({ path: FILE, line: 4, column: 11, reason: 'targets[0].port: expected a number, got a string' });
  });

  it('reports an out-of-range limit', () => {
    const err = configError(`limits:\n  maxMessageBytes: 10\n${MINIMAL}`);
    expect(err.line).toBe(2);
    expect(err.reason).toBe('limits.maxMessageBytes: must be >= 1024');
  });

  it('reports an unknown key at the key, with a suggestion', () => {
    const err = configError(lines('listen:', '  hots: 127.0.0.1', ...MINIMAL.trim().split('\n')));
    expect(err).toMatchObject({ line: 2, column: 3, reason: 'listen.hots: unknown key "hots"; did you mean "host"?' });
  });

  it('lists the allowed keys when no key is close', () => {
    const err = configError(`frobnicate: true\n${MINIMAL}`);
    expect(err).toMatchObject({ line: 1, column: 1 });
    expect(err.reason).toBe('frobnicate: unknown key "frobnicate"; allowed keys: listen, dataDir, tls, limits, targets, policy, ui, oidc, masking');
  });

  it('reports a duplicate target name on the second definition', () => {
    const err = configError(`${MINIMAL}${lines('  - name: shop', '    host: other', '    database: shop2', '    user: app')}`);
    expect(err).toMatchObject({ line: 6, column: 11, reason: 'targets[1].name: duplicate target name "shop" (already used by targets[0])' });
  });

  it('refuses a literal password without repeating it', () => {
    const err = configError(lines('targets:', '  - name: shop', '    host: db', '    database: shop', '    user: app', '    password: hunter2-secret'));
    expect(err.line).toBe(6);
    expect(err.reason).toMatch(/^targets\[0\]\.password: a literal password is refused: .*\{ env: VARIABLE_NAME \}.*\{ file: /);
    expect(err.message).not.toContain('hunter2');
  });

  it('refuses a password with both env and file', () => {
    const err = configError(`${MINIMAL}    password: { env: A, file: b }\n`);
    expect(err).toMatchObject({ line: 6, reason: 'targets[0].password: give exactly one of env or file, not both' });
  });

  it('reports a bad tls mode', () => {
    const err = configError(`${MINIMAL}    tls:\n      mode: verify-ca\n`);
    expect(err).toMatchObject({ line: 7, column: 13, reason: 'targets[0].tls.mode: must be one of disable, prefer, require, verify-full' });
  });

  it('requires ca for verify-full and points at the tls key', () => {
    const err = configError(`${MINIMAL}    tls:\n      mode: verify-full\n`);
    expect(err).toMatchObject({ line: 6, column: 5 });
    expect(err.reason).toMatch(/^targets\[0\]\.tls\.ca: mode verify-full needs ca .*does not fall back to the system roots/);
  });

  it('refuses ca with a mode that does not verify', () => {
    const err = configError(`${MINIMAL}    tls: { mode: require, ca: ca.pem }\n`);
    expect(err.reason).toMatch(/^targets\[0\]\.tls\.ca: ca is only used with mode verify-full/);
  });

  it('reports missing targets at the top of the file', () => {
    const err = configError('listen:\n  port: 7000\n');
    expect(err).toMatchObject({ line: 1, column: 1, reason: 'targets: required key is missing' });
    expect(configError('targets: []\n')).toMatchObject({ line: 1, column: 1, reason: 'targets: at least one target is required' });
  });

  it('reports a missing required key at its parent', () => {
    const err = configError(lines('dataDir: x', 'targets:', '  - name: shop', '    host: db', '    database: shop'));
    expect(err).toMatchObject({ line: 3, column: 5, reason: 'targets[0].user: required key is missing' });
  });

  it('reports an empty file and a non-mapping file', () => {
    expect(configError('')).toMatchObject({ line: 1, column: 1, reason: expect.stringMatching(/empty/) });
    expect(configError('- a\n- b\n').reason).toMatch(/must be a mapping/);
  });

  it('refuses a host name as listen.host', () => {
    const err = configError(`listen: { host: example.com }\n${MINIMAL}`);
    expect(err).toMatchObject({ line: 1, column: 17 });
    expect(err.reason).toMatch(/^listen\.host: must be a literal IP address/);
  });

  it('reports every problem, one line each, in source order', () => {
    const err = configError(lines('listen: { port: 99999 }', 'limits: { authTimeoutMs: 1 }', 'targets:', '  - { name: "bad name", host: db, database: d, user: u }'));
    expect(err.problems.map((p) => [p.line, p.key])).toEqual([
      [1, 'listen.port'],
      [2, 'limits.authTimeoutMs'],
      [4, 'targets[0].name'],
    ]);
    expect(err.message.split('\n')).toHaveLength(3);
    expect(err.message.split('\n').every((l) => l.startsWith(`${FILE}:`))).toBe(true);
  });
});

describe('loadConfig', () => {
  it('reads the file and resolves paths against its directory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-config-'));
    mkdirSync(join(dir, 'conf'));
    const file = join(dir, 'conf', 'sluice.yaml');
    writeFileSync(file, `${MINIMAL}    password: { file: ./pw }\n`);
    const config = loadConfig(file);
    expect(config.dataDir).toBe(join(dir, 'conf', '.sluice'));
    expect(config.targets[0]?.password).toEqual({ file: join(dir, 'conf', 'pw') });
  });

  it('throws ConfigError for an unreadable file', () => {
    const file = join(tmpdir(), 'sluice-does-not-exist', 'sluice.yaml');
    expect(() => loadConfig(file)).toThrow(ConfigError);
    expect(() => loadConfig(file)).toThrow(`${file}:1:1: cannot read config file: no such file`);
  });
});

describe('parseConfig: unknown keys inside the password source', () => {
  it('lists the keys of both password forms', () => {
    const err = configError(`${MINIMAL}    password: { env: X, extra: 1 }\n`);
    expect(err).toMatchObject({ line: 6, column: 25, reason: 'targets[0].password.extra: unknown key "extra"; allowed keys: env, file' });
  });
});
