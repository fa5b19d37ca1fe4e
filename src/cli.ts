import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { openDataStore } from './audit/db.js';
import { createBroker } from './broker.js';
import { ConfigError, loadConfig } from './config/load.js';
import type { SluiceConfig } from './config/model.js';
import { demoDataDir, startDemoDatabase } from './demo.js';
import { auditCommand } from './audit/cli-audit.js';
import { reviewCommand } from './audit/cli-review.js';
import { DEFAULT_POLICY } from './policy/model.js';
import { AGENT_KEY_NAME, AgentKeyStore, parseDuration } from './identity/agent-keys.js';
import { POLICY_TEST_HELP, policyTestCommand } from './policy/cli-policy.js';
import { approvalCommand } from './operator/cli-approvals.js';
import { startOperatorApi } from './operator/serve.js';
import { execCommand, tokenCommand } from './identity/cli-oidc.js';

const USAGE = `sluice: a session broker for PostgreSQL

Usage:
  sluice serve [--config FILE]                      run the broker headless (demo database if no config)
  sluice key add NAME [--groups a,b] [--expires 30d] create an agent key; prints its secret once
  sluice key list [--json]                          list agent keys (never their secrets)
  sluice key revoke NAME                            revoke a key; new connections with it fail at once
  sluice token --issuer I --client-id ID            get an OIDC access token (client credentials) and print it
  sluice exec --target T --issuer I --client-id ID -- CMD   run CMD with PG* variables set to connect through Sluice with a token
  sluice approvals [--watch]                        statements waiting for an operator (needs a running serve)
  sluice approve ID [--session]                     let a held statement run (once, or its shape for the session)
  sluice deny ID --reason TEXT                      refuse a held statement; the client gets the reason
  sluice policy test [FILE]                         run the policy's example statements like unit tests
  sluice audit verify [--anchor SEQ:HASH]           check the audit hash chain; names the first bad record
  sluice audit export [--since T] [--format jsonl]  stream audit records as JSON lines
  sluice review [--unused-days 30] [--since T] [--json]  access review: use per identity, refusals, unused keys, idle rules

Options for every command:
  --config FILE   config file (default: $SLUICE_CONFIG, else ./sluice.yaml if present)
  --help          show help for a command
`;

const HELP: Record<string, string> = {
  serve: `sluice serve [--config FILE] [--port N]

Runs the broker without a window. Clients connect with any PostgreSQL client: the user name is the
identity (an agent key name), the password is the agent key, the database name selects a target.
Without a config file, serves an embedded demo database (PGlite) with a fresh demo agent key.
  --port N   override listen.port (demo default 6432)
Also opens the operator API (WebSocket, for the UI and \`sluice approvals\`) on 127.0.0.1:ui.port (default 6433),
guarded by a token printed at start and stored in DATA_DIR/operator.json (readable by you only).`,
  'key add': `sluice key add NAME [--groups a,b] [--expires 30d] [--config FILE]

Creates an agent key for identity NAME and prints its secret once; only a salted scrypt hash is stored.
  --groups a,b   groups the identity belongs to (used by policy rules)
  --expires D    lifetime: 45s, 90m, 12h, 30d or 2w (default: no expiry)`,
  'key list': `sluice key list [--json] [--config FILE]

Lists agent keys with groups, status, expiry and last use. Secrets and hashes are never shown.`,
  'key revoke': `sluice key revoke NAME [--config FILE]

Revokes the key for NAME. New connections with it are refused at once (also by a running broker).`,
};

type Out = { log(s: string): void; error(s: string): void };

export async function main(argv: string[], out: Out = console): Promise<number> {
  const [cmd, sub] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') { out.log(USAGE); return cmd ? 0 : 1; }
  try {
    switch (cmd) {
      case 'serve': return await serve(argv.slice(1), out);
      case 'approvals': case 'approve': case 'deny':
        return await approvalCommand(cmd, argv.slice(1), out, (cfg) => dataDirOf(configPath(cfg)));
      case 'audit': return await auditCommand(argv.slice(1), out, (cfg) => openDataStore(dataDirOf(configPath(cfg))));
      case 'review': return await reviewCommand(argv.slice(1), out, (cfg) => {
        const path = configPath(cfg);
        const config = path ? loadConfig(path) : null;
        return { db: openDataStore(config?.dataDir ?? demoDataDir()), policy: config ? (config.policy ?? DEFAULT_POLICY) : null };
      });
      case 'token': return await tokenCommand(argv.slice(1), out, loadOptionalConfig);
      case 'exec': return await execCommand(argv.slice(1), out, loadOptionalConfig);
      case 'policy':
        if (sub === 'test') return await policyTestCommand(argv.slice(2), out);
        out.error(sub && sub !== '--help' ? `unknown policy command "${sub}"\n` : '');
        out.log(POLICY_TEST_HELP);
        return sub === '--help' ? 0 : 2;
      case 'key': {
        const rest = argv.slice(2);
        if (sub === 'add') return keyAdd(rest, out);
        if (sub === 'list') return keyList(rest, out);
        if (sub === 'revoke') return keyRevoke(rest, out);
        out.error(sub && sub !== '--help' ? `unknown key command "${sub}"\n` : '');
        out.log(['key add', 'key list', 'key revoke'].map((k) => HELP[k]).join('\n\n'));
        return sub === '--help' ? 0 : 2;
      }
      default:
        out.error(`unknown command "${cmd}"\n`);
        out.log(USAGE);
        return 2;
    }
  } catch (err) {
    if (err instanceof ConfigError || err instanceof UsageError) { out.error(err.message); return 2; }
    out.error(`sluice: ${(err as Error).message}`);
    return 1;
  }
}

class UsageError extends Error {}

const COMMON = { config: { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const;

type Options = NonNullable<ParseArgsConfig['options']>;
interface Parsed {
  values: { [k: string]: string | undefined } & { help?: boolean; json?: boolean };
  positionals: string[];
}

function args(argv: string[], options: Options, name: string, positionals: number): Parsed {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...options, ...COMMON }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${HELP[name]}`);
  }
  if (!parsed.values.help && parsed.positionals.length !== positionals) {
    throw new UsageError(`expected ${positionals} argument(s)\n\n${HELP[name]}`);
  }
  return parsed as Parsed;
}

function configPath(explicit: string | undefined): string | undefined {
  if (explicit) return resolve(explicit);
  if (process.env.SLUICE_CONFIG) return resolve(process.env.SLUICE_CONFIG);
  return existsSync('sluice.yaml') ? resolve('sluice.yaml') : undefined;
}

function loadOptionalConfig(explicit: string | undefined): SluiceConfig | null {
  const path = configPath(explicit);
  return path ? loadConfig(path) : null;
}

/** Key commands work on the data directory of the config, or of the demo when there is none. */
function dataDirOf(path: string | undefined): string {
  return path ? loadConfig(path).dataDir : demoDataDir();
}

function openKeys(explicitConfig: string | undefined) {
  const db = openDataStore(dataDirOf(configPath(explicitConfig)));
  return { db, keys: new AgentKeyStore(db) };
}

async function serve(argv: string[], out: Out): Promise<number> {
  const { values } = args(argv, { port: { type: 'string' } }, 'serve', 0);
  if (values.help) { out.log(HELP.serve!); return 0; }
  const path = configPath(values.config);
  const port = values.port === undefined ? undefined : Number(values.port);
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port < 65536)) throw new UsageError('--port must be 0..65535');
  let config: SluiceConfig;
  let stopDemo: (() => Promise<void>) | undefined;
  if (path) {
    config = loadConfig(path);
    if (port !== undefined) config = { ...config, listen: { ...config.listen, port } };
  } else {
    out.log('No config file given (--config, $SLUICE_CONFIG or ./sluice.yaml): starting the embedded demo database.');
    const demo = await startDemoDatabase({ dataDir: demoDataDir(), listenPort: port ?? 6432 });
    config = demo.config;
    stopDemo = demo.stop;
  }
  const broker = createBroker(config, path ? { configPath: path } : { demo: true });
  let addr;
  try {
    addr = await broker.listen();
  } catch (err) {
    await broker.close();
    await stopDemo?.();
    throw new Error(`cannot listen on ${config.listen.host}:${config.listen.port}: ${(err as Error).message}`);
  }
  out.log(`sluice listening on ${addr.host}:${addr.port} (targets: ${config.targets.map((t) => t.name).join(', ')}; data: ${config.dataDir})`);
  if (stopDemo) {
    const existing = broker.keys.list().find((k) => k.name === 'demo-agent');
    if (existing?.status === 'active') broker.keys.revoke('demo-agent');
    const { secret } = broker.keys.add('demo-agent', { groups: ['demo'] });
    out.log(`\nDemo agent key created for identity "demo-agent". Connect with:\n\n  PGPASSWORD=${secret} psql "host=${addr.host} port=${addr.port} user=demo-agent dbname=shop sslmode=disable"\n\nTry: SELECT full_name, email FROM customers;  Every statement is recorded in ${config.dataDir}/sluice.db.`);
  }
  let ops;
  try {
    ops = await startOperatorApi(broker, { port: config.ui.port, dataDir: config.dataDir }).catch((err: NodeJS.ErrnoException) => {
      // Another serve (or anything) on the UI port must not stop the broker: clients find the port in operator.json.
      if (err.code !== 'EADDRINUSE') throw err;
      out.error(`ui.port ${config.ui.port} is in use: the operator API takes a free port instead`);
      return startOperatorApi(broker, { port: 0, dataDir: config.dataDir });
    });
  } catch (err) {
    await broker.close();
    await stopDemo?.();
    throw new Error(`cannot start the operator API on 127.0.0.1:${config.ui.port} (ui.port): ${(err as Error).message}`);
  }
  // The token is printed here and stored in the 0600 discovery file, and nowhere else (never through the log).
  // The token appears in one line only: the console URL (in its fragment, which browsers never send), else the API line.
  if (ops.uiAvailable) {
    out.log(`operator console: ${ops.consoleUrl}\n  (open it in a browser on this machine)`);
    out.log(`operator API: ${ops.url}  (same token; for \`sluice approvals\`, also in ${ops.file}, readable by you only)`);
  } else {
    out.log(`operator API: ${ops.url}  token: ${ops.token}\n  (for \`sluice approvals\`, also in ${ops.file}, readable by you only)`);
    out.log('operator console: not built (run `npm run build`); the API works without it');
  }
  await new Promise<void>((resolveStop) => {
    const stop = (sig: string) => { out.log(`\n${sig}: shutting down`); resolveStop(); };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  await ops.close();
  await broker.close();
  await stopDemo?.();
  return 0;
}

function keyAdd(argv: string[], out: Out): number {
  const { values, positionals } = args(argv, { groups: { type: 'string' }, expires: { type: 'string' } }, 'key add', 1);
  if (values.help) { out.log(HELP['key add']!); return 0; }
  const groups = values.groups ? values.groups.split(',').map((g) => g.trim()).filter(Boolean) : [];
  let expiresAt: number | undefined;
  try {
    expiresAt = values.expires ? Date.now() + parseDuration(values.expires) : undefined;
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${HELP['key add']}`);
  }
  if (!AGENT_KEY_NAME.test(positionals[0]!)) {
    throw new UsageError(`invalid key name "${positionals[0]}": 1-63 characters from A-Z a-z 0-9 _ . @ - (it is the PostgreSQL user name clients send)`);
  }
  const { db, keys } = openKeys(values.config);
  try {
    const { secret } = keys.add(positionals[0]!, { groups, ...(expiresAt ? { expiresAt } : {}) });
    out.error(`Agent key for "${positionals[0]}" created${expiresAt ? `, expires ${new Date(expiresAt).toISOString()}` : ''}. The secret is shown once:`);
    out.log(secret);
    return 0;
  } finally {
    db.close();
  }
}

function keyList(argv: string[], out: Out): number {
  const { values } = args(argv, { json: { type: 'boolean' } }, 'key list', 0);
  if (values.help) { out.log(HELP['key list']!); return 0; }
  const { db, keys } = openKeys(values.config);
  try {
    const rows = keys.list();
    if (values.json) { out.log(JSON.stringify(rows, null, 2)); return 0; }
    if (rows.length === 0) { out.log('no agent keys (create one with: sluice key add NAME)'); return 0; }
    const iso = (t: number | null) => (t ? new Date(t).toISOString() : '-');
    out.log(['NAME', 'STATUS', 'GROUPS', 'EXPIRES', 'LAST USED'].join('\t'));
    for (const k of rows) out.log([k.name, k.status, k.groups.join(',') || '-', iso(k.expiresAt), iso(k.lastUsedAt)].join('\t'));
    return 0;
  } finally {
    db.close();
  }
}

function keyRevoke(argv: string[], out: Out): number {
  const { values, positionals } = args(argv, {}, 'key revoke', 1);
  if (values.help) { out.log(HELP['key revoke']!); return 0; }
  const { db, keys } = openKeys(values.config);
  try {
    if (!keys.revoke(positionals[0]!)) { out.error(`no active key named "${positionals[0]}"`); return 1; }
    out.log(`revoked "${positionals[0]}"`);
    return 0;
  } finally {
    db.close();
  }
}
