import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBroker, type Broker } from '../../../src/broker.js';
import { loadConfig } from '../../../src/config/load.js';
import { bytesHash, shapeKey } from '../../../src/approvals/keys.js';
import type { ApprovalRequestInfo } from '../../../src/approvals/queue.js';
import { startOperatorApi, type RunningOperatorApi } from '../../../src/operator/serve.js';
import type { PgCluster } from '../../harness/postgres.js';

/** What `sluice serve --config FILE` runs, in this process: a broker with a watched config file and its operator API. */
export interface ServedSluice {
  broker: Broker;
  api: RunningOperatorApi;
  dir: string;
  configFile: string;
  dataDir: string;
  /** Secret of agent key `agent` (group test). */
  key: string;
  logs: string[];
  url(opts?: { user?: string; password?: string }): string;
  proxyPort: number;
  close(): Promise<void>;
}

export const CONFIG_POLICY = `policy:
  rules:
    - name: tests-no-ddl
      match: { groups: [test] }
      allow: [read, write, session, transaction, utility]
`;

/** `pg` may be omitted when no client connects through the proxy (the target then points nowhere). */
export async function serveSluice(pg?: PgCluster, opts: { uiRoot?: string | null } = {}): Promise<ServedSluice> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-serve-'));
  const configFile = join(dir, 'sluice.yaml');
  writeFileSync(configFile, `# test config
listen: { host: 127.0.0.1, port: 0 }
dataDir: ./data
ui: { port: 0 }
targets:
  - name: app
    host: 127.0.0.1
    port: ${pg?.port ?? 1}
    database: app
    user: app
    password: { env: APP_PG_PASSWORD }
    tls: { mode: disable }

${CONFIG_POLICY}`);
  const config = loadConfig(configFile);
  const logs: string[] = [];
  const env = { ...process.env, APP_PG_PASSWORD: pg?.roles.app.password ?? 'unused' };
  const broker = createBroker(config, { configPath: configFile, env, log: (level, msg) => logs.push(`${level}: ${msg}`) });
  const addr = await broker.listen();
  const api = await startOperatorApi(broker, {
    port: config.ui.port, dataDir: config.dataDir, log: (level, msg) => logs.push(`${level}: ${msg}`),
    ...(opts.uiRoot !== undefined ? { uiRoot: opts.uiRoot } : {}),
  });
  const { secret } = broker.keys.add('agent', { groups: ['test'] });
  return {
    broker, api, dir, configFile, dataDir: config.dataDir, key: secret, logs, proxyPort: addr.port,
    url: ({ user = 'agent', password = secret } = {}) =>
      `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${addr.port}/app?sslmode=disable`,
    async close() {
      await api.close();
      await broker.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A pending approval as the statement loop would file it (the wire hold itself is the proxy's). */
export function reviewInfo(sessionId: number, statement = 'DELETE FROM orders WHERE id = $1', params: string[] = ['7']): ApprovalRequestInfo {
  return {
    sessionId, identity: 'agent', groups: ['test'], target: 'app', applicationName: 'test', statement,
    classes: ['write'], tables: ['w:public.orders'], params, shapeKey: shapeKey(statement),
    bytesHash: bytesHash(statement, params), deadlineMs: 60_000, rule: 'review-writes',
    recentStatements: ['BEGIN'],
  };
}
