import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { AuditLog } from './audit/audit-log.js';
import { openDataStore, type DataStore } from './audit/db.js';
import type { SluiceConfig, TargetConfig } from './config/model.js';
import { resolveTargetPassword } from './config/password.js';
import { watchConfig } from './config/watch.js';
import { AgentKeyStore } from './identity/agent-keys.js';
import { bindPolicy, type ResolvedLimits } from './policy/evaluate.js';
import { DEFAULT_POLICY } from './policy/model.js';
import { StatementGate } from './proxy/statement-gate.js';
import { classify } from './sql/classify.js';
import { loadParser } from './sql/parser.js';
import { CancelRegistry } from './proxy/cancel-registry.js';
import type { ProxyContext } from './proxy/context.js';
import { ProxyListener } from './proxy/listener.js';
import type { UpstreamTarget } from './proxy/upstream.js';

export type LogFn = (level: 'info' | 'warn' | 'error', msg: string) => void;

export interface BrokerDeps {
  log?: LogFn;
  env?: NodeJS.ProcessEnv;
  /** The config file to watch: a valid edit of its policy applies to the next statement of every session. */
  configPath?: string;
}

export interface Broker {
  readonly db: DataStore;
  readonly keys: AgentKeyStore;
  readonly audit: AuditLog;
  /** Starts accepting clients on the configured address; resolves with the bound address. */
  listen(): Promise<{ host: string; port: number }>;
  /** Clients currently connected (any state). */
  connectionCount(): number;
  /** Re-reads the config file now (it is also polled); returns false when the file is broken (the policy stays). */
  reloadConfig(): boolean;
  /** How many policy versions this broker has applied (1 at start). */
  policyVersion(): number;
  close(): Promise<void>;
}

/** Wires the stores and the proxy together. The Electron shell and `sluice serve` both run this. */
export function createBroker(config: SluiceConfig, deps: BrokerDeps = {}): Broker {
  const log: LogFn = deps.log ?? ((level, msg) => (level === 'info' ? console.log : console.error)(`[sluice] ${msg}`));
  const env = deps.env ?? process.env;
  const db = openDataStore(config.dataDir);
  const keys = new AgentKeyStore(db);
  const audit = new AuditLog(db, { onError: (m) => log('error', m) });
  const aborted = audit.markOpenSessionsAborted('Sluice stopped while the session was open');
  if (aborted > 0) log('warn', `marked ${aborted} session(s) left open by a previous run as aborted`);

  // The policy in force is part of the audit trail: every statement's rule name refers to a recorded version.
  let policy = config.policy ?? DEFAULT_POLICY;
  let policyText = JSON.stringify(policy, null, 2);
  let policyVersion = 1;
  audit.recordPolicyVersion(deps.configPath ?? null, policyText);
  const applyConfig = (next: SluiceConfig): void => {
    const text = JSON.stringify(next.policy ?? DEFAULT_POLICY, null, 2);
    if (text === policyText) return;
    audit.recordPolicyVersion(deps.configPath ?? null, text);
    policy = next.policy ?? DEFAULT_POLICY;
    policyText = text;
    policyVersion++;
    log('info', `applied policy version ${policyVersion} from ${deps.configPath}`);
  };
  let configBroken = false;
  const watcher = deps.configPath
    ? watchConfig(deps.configPath, (next) => { configBroken = false; applyConfig(next); }, (err) => {
      configBroken = true;
      log('error', `config change refused, the running policy stays:\n${err.message}`);
    })
    : null;
  const byName = new Map(config.targets.map((t) => [t.name, t] as const));
  const targets = new Map<string, UpstreamTarget>(config.targets.map((t) => [t.name, toUpstream(t)]));
  const ctx: ProxyContext = {
    limits: config.limits,
    tls: config.tls
      ? tls.createSecureContext({ cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key), minVersion: 'TLSv1.2' })
      : undefined,
    targets,
    resolvePassword: (t) => resolveTargetPassword(byName.get(t.name)!, env),
    verifyKey: (name, secret) => keys.verify(name, secret),
    audit,
    cancels: new CancelRegistry(),
    activeSessions: new Set(),
    log,
    createGate: (session) => {
      // Rules are matched and limits resolved once per session (and again after a policy change); each message then
      // costs only its statement checks.
      let bound = bindPolicy(policy, session);
      let boundVersion = policyVersion;
      const current = () => {
        if (boundVersion !== policyVersion) {
          bound = bindPolicy(policy, session);
          boundVersion = policyVersion;
        }
        return bound;
      };
      return new StatementGate({
        classify: (text) => classify(text),
        decide: (stmts) => current().decide(stmts),
        redactParams: () => current().redactParams,
        rowLimits: () => current().limits,
        onInternalError: (err) => log('error', `statement refused after an internal error: ${err.stack ?? err.message}`),
        sessionDefaults: sessionDefaults(bound.limits),
      });
    },
  };
  const listener = new ProxyListener(ctx);
  let closed = false;

  return {
    db, keys, audit,
    async listen() {
      // PostgreSQL's parser (WASM) is loaded before the first client can send a statement.
      await loadParser();
      return listener.listen(config.listen.host, config.listen.port);
    },
    connectionCount: () => listener.connectionCount,
    reloadConfig() {
      watcher?.check();
      return !configBroken;
    },
    policyVersion: () => policyVersion,
    async close() {
      if (closed) return;
      closed = true;
      watcher?.close();
      await listener.close('Sluice is shutting down');
      audit.close();
      db.close();
    },
  };
}

/** Policy limits that are pinned upstream for the whole session (the evaluator refuses turning them off). */
function sessionDefaults(limits: ResolvedLimits): Record<string, string> {
  const out: Record<string, string> = {};
  if (limits.readOnly) out.default_transaction_read_only = 'on';
  if (limits.statementTimeoutMs !== null) out.statement_timeout = `${limits.statementTimeoutMs}ms`;
  return out;
}

function toUpstream(t: TargetConfig): UpstreamTarget {
  return { name: t.name, host: t.host, port: t.port, database: t.database, user: t.user, tls: { mode: t.tls.mode, ca: t.tls.ca } };
}
