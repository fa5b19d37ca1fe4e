import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { AuditLog } from './audit/audit-log.js';
import { openDataStore, type DataStore } from './audit/db.js';
import type { SluiceConfig, TargetConfig } from './config/model.js';
import { resolveTargetPassword } from './config/password.js';
import { watchConfig } from './config/watch.js';
import { AgentKeyStore } from './identity/agent-keys.js';
import { Authenticator } from './identity/authenticator.js';
import { IdentityStore } from './identity/identity-store.js';
import { OidcVerifier } from './identity/oidc-verifier.js';
import { bindPolicy, type ResolvedLimits } from './policy/evaluate.js';
import { DEFAULT_POLICY } from './policy/model.js';
import { StatementGate } from './proxy/statement-gate.js';
import { classify } from './sql/classify.js';
import { loadParser } from './sql/parser.js';
import { CancelRegistry } from './proxy/cancel-registry.js';
import type { ProxyContext } from './proxy/context.js';
import { ProxyListener } from './proxy/listener.js';
import type { UpstreamTarget } from './proxy/upstream.js';
import { ApprovalQueue } from './approvals/queue.js';
import { voidOrphanedApprovals } from './approvals/recovery.js';
import { sideConnectionEstimator } from './approvals/estimator.js';
import { openSideConnection } from './proxy/side-connection-impl.js';
import { sha256Hex } from './audit/chain.js';
import { EventBus } from './operator/event-bus.js';
import { createContractService, type ContractHandlers } from './operator/service.js';
import { tapAudit } from './operator/tap.js';

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
  /** Identities that have logged in (agent keys and OIDC subjects): issuer, groups, first and last seen. */
  readonly identities: IdentityStore;
  readonly audit: AuditLog;
  /** Starts accepting clients on the configured address; resolves with the bound address. */
  listen(): Promise<{ host: string; port: number }>;
  /** Clients currently connected (any state). */
  connectionCount(): number;
  /** Re-reads the config file now (it is also polled); returns false when the file is broken (the policy stays). */
  reloadConfig(): boolean;
  /** How many policy versions this broker has applied (1 at start). */
  policyVersion(): number;
  /** Statements held for an operator (policy `review`): see src/approvals/queue.ts. */
  readonly approvals: ApprovalQueue;
  /** Contract events (src/contract/api.ts) for UI transports. */
  readonly events: EventBus;
  /** The contract implemented in process; transports call it through operator/service.ts `dispatch`. */
  readonly contract: ContractHandlers;
  close(): Promise<void>;
}

/** Wires the stores and the proxy together. The Electron shell and `sluice serve` both run this. */
export function createBroker(config: SluiceConfig, deps: BrokerDeps = {}): Broker {
  const log: LogFn = deps.log ?? ((level, msg) => (level === 'info' ? console.log : console.error)(`[sluice] ${msg}`));
  const env = deps.env ?? process.env;
  const db = openDataStore(config.dataDir);
  const keys = new AgentKeyStore(db);
  const identities = new IdentityStore(db);
  const oidc = config.oidc ? new OidcVerifier(config.oidc, env) : undefined;
  // Discovery starts now so the first token login does not wait for it; an unreachable issuer is retried later.
  void oidc?.prepare((msg) => log('warn', msg));
  const authenticator = new Authenticator({ keys, oidc, identities });
  const audit = new AuditLog(db, { onError: (m) => log('error', m) });
  const aborted = audit.markOpenSessionsAborted('Sluice stopped while the session was open');
  if (aborted > 0) log('warn', `marked ${aborted} session(s) left open by a previous run as aborted`);
  const orphaned = voidOrphanedApprovals(db, audit);
  if (orphaned > 0) log('warn', `recorded ${orphaned} approval(s) left waiting by a previous run as voided`);
  const events = new EventBus((m) => log('error', m));
  const approvals = new ApprovalQueue({
    audit, emit: (e) => events.emit(e), onError: (m) => log('error', m),
    // The operator sees the rows a write would touch: EXPLAIN on a short-lived side connection (runs after listen()).
    estimate: sideConnectionEstimator((name) => {
      const t = targets.get(name);
      if (!t) return Promise.reject(new Error(`unknown target "${name}"`));
      return openSideConnection(t, resolveTargetPassword(byName.get(name)!, env), {
        timeoutMs: config.limits.connectTimeoutMs, maxServerMessageBytes: config.limits.maxServerMessageBytes, queryTimeoutMs: 10_000,
      });
    }),
  });
  // Sessions and decided statements reach the UI from what the proxy records; an ended session voids its approvals.
  const tap = tapAudit(audit, events, (id, reason) => approvals.endSession(id, reason));

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
    events.emit({ type: 'policy_changed', at: Date.now(), policyVersion, sha256: sha256Hex(text) });
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
    authenticate: (user, secret) => authenticator.authenticate(user, secret),
    audit: tap.audit,
    cancels: new CancelRegistry(),
    approvals,
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
        session,
        onInternalError: (err) => log('error', `statement refused after an internal error: ${err.stack ?? err.message}`),
        sessionDefaults: sessionDefaults(bound.limits),
      });
    },
  };
  const listener = new ProxyListener(ctx);
  let closed = false;
  const contract = createContractService({
    db, keys, identities, approvals, tap, targets: () => config.targets, configPath: deps.configPath ?? null,
    policy: () => ({ version: policyVersion, text: policyText }),
    reloadConfig: () => { watcher?.check(); return !configBroken; },
    connectionCount: () => listener.connectionCount,
    startedAt: Date.now(),
  });

  return {
    db, keys, identities, audit, approvals, events, contract,
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
      approvals.close('Sluice is shutting down');
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
