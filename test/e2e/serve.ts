import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBroker, type Broker } from '../../src/broker.js';
import { loadConfig } from '../../src/config/load.js';
import { startOperatorApi, type RunningOperatorApi } from '../../src/operator/serve.js';
import { PG_BIN, type PgCluster } from '../harness/postgres.js';

/** Reads run, writes wait for an operator: the inbox has something to show. */
export const E2E_POLICY = `policy:
  rules:
    - name: agents
      match: { groups: [test] }
      allow: [read, session, transaction, utility]
      review: [write]
`;

export interface ConsoleSluice {
  broker: Broker;
  api: RunningOperatorApi;
  configFile: string;
  key: string;
  proxyPort: number;
  close(): Promise<void>;
}

/** What `sluice serve --config FILE` runs (src/cli.ts), in this process, serving the built console from `uiRoot`. */
export async function serveConsole(pg: PgCluster, uiRoot: string): Promise<ConsoleSluice> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-e2e-'));
  const configFile = join(dir, 'sluice.yaml');
  writeFileSync(configFile, `# e2e config
listen: { host: 127.0.0.1, port: 0 }
dataDir: ./data
ui: { port: 0 }
targets:
  - name: app
    host: 127.0.0.1
    port: ${pg.port}
    database: app
    user: app
    password: { env: APP_PG_PASSWORD }
    tls: { mode: disable }

${E2E_POLICY}`);
  const config = loadConfig(configFile);
  const env = { ...process.env, APP_PG_PASSWORD: pg.roles.app.password };
  const broker = createBroker(config, { configPath: configFile, env, log: () => {} });
  const addr = await broker.listen();
  const api = await startOperatorApi(broker, { port: 0, dataDir: config.dataDir, uiRoot });
  const { secret } = broker.keys.add('agent', { groups: ['test'] });
  return {
    broker, api, configFile, key: secret, proxyPort: addr.port,
    async close() {
      await api.close();
      await broker.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface PsqlResult { code: number | null; stdout: string; stderr: string }

/** A real psql through Sluice; resolves when it exits (a held statement keeps it waiting). */
export function psql(s: ConsoleSluice, sql: string, opts: { appName?: string; file?: string } = {}): Promise<PsqlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(PG_BIN, 'psql'), [
      `host=127.0.0.1 port=${s.proxyPort} user=agent dbname=app sslmode=disable application_name=${opts.appName ?? 'psql-e2e'}`,
      // A script (-f) goes on after a refused statement, as an agent's session would.
      '-X', '-A', '-t', ...(opts.file ? ['-q', '-f', opts.file] : ['-v', 'ON_ERROR_STOP=1', '-c', sql]),
    ], { env: { ...process.env, PGPASSWORD: s.key, PGCONNECT_TIMEOUT: '10' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
