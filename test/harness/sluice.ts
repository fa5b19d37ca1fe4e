import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBroker, type Broker } from '../../src/broker.js';
import { ConfigSchema, type SluiceConfigInput } from '../../src/config/model.js';
import { HIDDEN_SQL_KINDS } from '../../src/policy/model.js';
import { STATEMENT_CLASSES } from '../../src/sql/types.js';

/**
 * The policy of tests that are about the proxy, not about policy: identity `agent` (group `test`) may run
 * everything rules can allow. Builtins (file/program/network functions, role changes) still apply.
 */
export const ALLOW_ALL_POLICY = {
  rules: [{ name: 'tests-allow-all', match: { groups: ['test'] }, allow: [...STATEMENT_CLASSES], allowHidden: [...HIDDEN_SQL_KINDS] }],
};
import type { PgCluster } from './postgres.js';

export interface RunningSluice {
  broker: Broker;
  host: '127.0.0.1';
  port: number;
  dataDir: string;
  /** Secret of the agent key `agent` (groups: test). */
  key: string;
  /** Log lines the broker wrote. */
  logs: string[];
  /** Connection URL through Sluice for an identity/key and target (default: agent, target `app`). */
  url(opts?: { user?: string; password?: string; target?: string }): string;
  close(): Promise<void>;
}

export interface SluiceTestOptions {
  /** Overrides merged into the config (targets replace the default ones). */
  config?: Partial<SluiceConfigInput>;
}

/**
 * Runs a broker in this process in front of `pg`. Default targets: `app` (role app, SCRAM, database app),
 * `md5` (md5user), `trust` (trustuser), all with tls disabled. Passwords reach the broker through env vars.
 */
export async function startSluice(pg: PgCluster, opts: SluiceTestOptions = {}): Promise<RunningSluice> {
  const dataDir = mkdtempSync(join(tmpdir(), 'sluice-test-'));
  const env = { ...process.env, APP_PG_PASSWORD: pg.roles.app.password, MD5_PG_PASSWORD: pg.roles.md5user.password };
  const base = { host: pg.host, port: pg.port, tls: { mode: 'disable' as const } };
  const config = ConfigSchema.parse({
    listen: { host: '127.0.0.1', port: 0 },
    dataDir,
    targets: [
      { ...base, name: 'app', database: 'app', user: 'app', password: { env: 'APP_PG_PASSWORD' } },
      { ...base, name: 'md5', database: 'postgres', user: 'md5user', password: { env: 'MD5_PG_PASSWORD' } },
      { ...base, name: 'trust', database: 'postgres', user: 'trustuser' },
    ],
    policy: ALLOW_ALL_POLICY,
    ...opts.config,
  });
  const logs: string[] = [];
  const broker = createBroker(config, { env, log: (level, msg) => logs.push(`${level}: ${msg}`) });
  const addr = await broker.listen();
  const { secret } = broker.keys.add('agent', { groups: ['test'] });
  return {
    broker,
    host: '127.0.0.1',
    port: addr.port,
    dataDir,
    key: secret,
    logs,
    url: ({ user = 'agent', password = secret, target = 'app' } = {}) =>
      `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${addr.port}/${encodeURIComponent(target)}?sslmode=disable`,
    async close() {
      await broker.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
