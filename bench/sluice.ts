/** Sluice under test, in its own process, configured with one target pointing at the bench database. */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from '../test/harness/net.js';
import type { Conn } from './pgbench.js';
import { runCommand, startDaemon, type Daemon } from './proc.js';

export const SLUICE_TARGET = 'bench';
export const SLUICE_IDENTITY = 'bench';

export type SluiceStart = { daemon: Daemon; conn: Conn } | { skipped: string };

export async function startSluice(repoRoot: string, dir: string, upstream: Conn): Promise<SluiceStart> {
  const bin = join(repoRoot, 'bin', 'sluice.js');
  if (!existsSync(bin)) return { skipped: `${bin} does not exist yet` };

  await mkdir(join(dir, 'data'), { recursive: true });
  const configFile = join(dir, 'sluice.yaml');
  // Format: src/config/model.ts. The real password travels by environment, never in the file.
  const config = {
    listen: { host: '127.0.0.1', port: await freePort() },
    dataDir: join(dir, 'data'),
    targets: [
      {
        name: SLUICE_TARGET,
        host: upstream.host,
        port: upstream.port,
        database: upstream.database,
        user: upstream.user,
        password: { env: 'BENCH_PG_PASSWORD' },
        tls: { mode: 'disable' },
      },
    ],
    // Every statement is parsed, decided and audited; the rule lets pgbench's statements through.
    policy: { rules: [{ name: 'bench', match: { identities: [SLUICE_IDENTITY] }, allow: ['read', 'write', 'transaction', 'session'] }] },
  };
  await writeFile(configFile, stringify(config));
  const env = { ...process.env, BENCH_PG_PASSWORD: upstream.password };

  // SLUICE_BENCH_NODE_ARGS passes Node flags to the Sluice process, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  const nodeArgs = (process.env.SLUICE_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const daemon = await startDaemon('sluice', process.execPath, [...nodeArgs, bin, 'serve', '--config', configFile], {
    cwd: dir,
    env,
    ready: /listening on 127\.0\.0\.1:(\d+)/,
  });
  const port = Number(daemon.match?.[1]);

  const key = await runCommand(process.execPath, [bin, 'key', 'add', SLUICE_IDENTITY, '--config', configFile], { cwd: dir, env });
  const secret = key.stdout.split('\n').find((l) => l.startsWith('sk_'))?.trim();
  if (key.code !== 0 || !secret) {
    await daemon.stop();
    throw new Error(`sluice key add failed (exit ${key.code}): ${key.stderr.trim() || key.stdout.trim()}`);
  }
  return {
    daemon,
    conn: { host: '127.0.0.1', port, user: SLUICE_IDENTITY, password: secret, database: SLUICE_TARGET },
  };
}
