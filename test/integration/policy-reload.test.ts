import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBroker, type Broker } from '../../src/broker.js';
import { loadConfig } from '../../src/config/load.js';
import { startPostgres, type PgCluster } from '../harness/postgres.js';

let cluster: PgCluster;
let dir: string;
let broker: Broker;
let port: number;
let secret: string;
const logs: string[] = [];

function writeConfig(policyLines: string[]): void {
  writeFileSync(join(dir, 'sluice.yaml'), [
    'listen: { host: 127.0.0.1, port: 0 }',
    'dataDir: ./data',
    'targets:',
    '  - name: app',
    '    host: 127.0.0.1',
    `    port: ${cluster.port}`,
    '    database: app',
    '    user: app',
    '    password: { env: RELOAD_PG_PASSWORD }',
    '    tls: { mode: disable }',
    ...policyLines,
    '',
  ].join('\n'));
}

const readers = ['policy:', '  rules:', '    - name: readers', '      match: { groups: [test] }', '      allow: [read]'];

beforeAll(async () => {
  cluster = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), 'sluice-reload-'));
  writeConfig(readers);
  const path = join(dir, 'sluice.yaml');
  broker = createBroker(loadConfig(path), {
    configPath: path,
    env: { ...process.env, RELOAD_PG_PASSWORD: cluster.roles.app.password },
    log: (level, msg) => logs.push(`${level}: ${msg}`),
  });
  port = (await broker.listen()).port;
  secret = broker.keys.add('agent', { groups: ['test'] }).secret;
});
afterAll(async () => {
  await broker?.close();
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('policy reload from the watched config file', () => {
  it('applies a valid edit to the next statement of an open session, refuses a broken one, and stores each version', async () => {
    const c = new pg.Client({ connectionString: `postgres://agent:${secret}@127.0.0.1:${port}/app?sslmode=disable` });
    await c.connect();
    expect((await c.query('SELECT 1 AS x')).rows).toEqual([{ x: 1 }]);

    writeConfig(['policy:', '  rules:', '    - name: nobody-reads', '      match: { groups: [test] }', '      deny: [read]']);
    expect(broker.reloadConfig()).toBe(true);
    expect(broker.policyVersion()).toBe(2);
    await expect(c.query('SELECT 1 AS x')).rejects.toMatchObject({ code: '42501', message: expect.stringContaining('nobody-reads') });

    // A broken edit: refused with the line and reason, the running policy stays.
    writeConfig(['policy:', '  rules:', '    - name: broken', '      allow: [reed]']);
    expect(broker.reloadConfig()).toBe(false);
    expect(logs.join('\n')).toMatch(/sluice\.yaml:14:15: policy\.rules\[0\]\.allow\[0\]: must be one of read/);
    expect(broker.policyVersion()).toBe(2);
    await expect(c.query('SELECT 1 AS x')).rejects.toMatchObject({ message: expect.stringContaining('nobody-reads') });

    writeConfig(readers);
    expect(broker.reloadConfig()).toBe(true);
    expect((await c.query('SELECT 2 AS x')).rows).toEqual([{ x: 2 }]);
    await c.end();

    const versions = broker.db.prepare('SELECT text FROM policy_versions ORDER BY id').all() as { text: string }[];
    expect(versions.map((v) => JSON.parse(v.text).rules[0].name)).toEqual(['readers', 'nobody-reads', 'readers']);
  });

  it('records a masking-only edit as a new version too (policy and masking rules together)', async () => {
    const before = broker.policyVersion();
    writeConfig([...readers, 'masking:', '  rules:', '    - { name: secrets, columns: [public.t.secret], method: redact }']);
    expect(broker.reloadConfig()).toBe(true);
    expect(broker.policyVersion()).toBe(before + 1);
    const last = broker.db.prepare('SELECT text FROM policy_versions ORDER BY id DESC LIMIT 1').get() as { text: string };
    expect(JSON.parse(last.text)).toMatchObject({ policy: { rules: [{ name: 'readers' }] }, masking: { rules: [{ columns: ['public.t.secret'] }] } });
  });
});
