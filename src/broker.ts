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
import { MaskHub } from './proxy/mask-hub.js';
import { SearchPathTracker } from './proxy/mask-path.js';
import { SqlState } from './protocol/codes.js';
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
  /** Sluice runs the embedded demo database (the console's first-run help says so). */
  demo?: boolean;
  /**
   * Where target passwords come from. Default: the config's env variable or file (`sluice serve`); the desktop
   * shell injects one backed by the OS keychain (main/core/secret-vault.ts). The core never stores secrets itself.
   */
  secrets?: SecretProvider;
}

export interface SecretProvider {
  /** The target's password, or undefined when it has none; throws TargetPasswordError when it cannot be had. */
  targetPassword(target: TargetConfig): string | undefined;
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
  /** True while new sessions are refused (pause()); open sessions are not affected. */
  readonly paused: boolean;
  /**
   * Refuse new sessions (after their login is checked: FATAL 57P03 with a hint) until resume(); sessions already
   * open carry on, and cancel requests still work. Both are audit events with the operator.
   */
  pause(operator: string): void;
  resume(operator: string): void;
  /** Stops everything; `reason` is recorded as the end of every open session. */
  close(reason?: string): Promise<void>;
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
    estimate: sideConnectionEstimator((name) => openSide(name)),
  });
  // Sessions and decided statements reach the UI from what the proxy records; an ended session voids its approvals.
  const openSide = (name: string) => {
    const t = targets.get(name);
    if (!t) return Promise.reject(new Error(`unknown target "${name}"`));
    return openSideConnection(t, secretOf(byName.get(name)!), {
      timeoutMs: config.limits.connectTimeoutMs, maxServerMessageBytes: config.limits.maxServerMessageBytes, queryTimeoutMs: 10_000,
    });
  };
  const tap = tapAudit(audit, events, (id, reason) => approvals.endSession(id, reason));

  // The policy in force is part of the audit trail: every statement's rule name refers to a recorded version.
  let policy = config.policy ?? DEFAULT_POLICY;
  let policyText = JSON.stringify(policy, null, 2);
  let policyVersion = 1;
  let masking = config.masking;
  let listenAddress: { host: string; port: number } | null = null;
  // A recorded version is the policy and the masking rules together: both decide what an agent gets.
  const versionText = (p: unknown, m: unknown) => (m === undefined ? JSON.stringify(p, null, 2) : JSON.stringify({ policy: p, masking: m }, null, 2));
  let recorded = versionText(policy, masking);
  audit.recordPolicyVersion(deps.configPath ?? null, recorded);
  const applyConfig = (next: SluiceConfig): void => {
    masking = next.masking;
    const text = JSON.stringify(next.policy ?? DEFAULT_POLICY, null, 2);
    const version = versionText(next.policy ?? DEFAULT_POLICY, next.masking);
    if (version === recorded) return;
    audit.recordPolicyVersion(deps.configPath ?? null, version);
    recorded = version;
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
  const secretOf = (t: TargetConfig) => (deps.secrets ? deps.secrets.targetPassword(t) : resolveTargetPassword(t, env));
  /** The operator who paused new sessions; null: accepting. */
  let pausedBy: string | null = null;
  const targets = new Map<string, UpstreamTarget>(config.targets.map((t) => [t.name, toUpstream(t)]));
  const ctx: ProxyContext = {
    limits: config.limits,
    tls: config.tls
      ? tls.createSecureContext({ cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key), minVersion: 'TLSv1.2' })
      : undefined,
    targets,
    resolvePassword: (t) => secretOf(byName.get(t.name)!),
    authenticate: async (user, secret) => {
      const outcome = await authenticator.authenticate(user, secret);
      // Checked after the login so that a paused Sluice tells only real callers that it is paused.
      if (!outcome.ok || pausedBy === null) return outcome;
      return {
        ok: false, code: SqlState.CannotConnectNow, message: 'Sluice is paused: new sessions are refused for now',
        hint: 'An operator paused Sluice; retry later. Sessions already open are not affected.', auditReason: `refused: Sluice paused by ${pausedBy}`,
      };
    },
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
      const target = targets.get(session.target)!;
      const names = maskHub.names(session, target);
      return new StatementGate({
        classify: (text) => classify(text),
        decide: (stmts) => current().decide(stmts),
        redactParams: () => current().redactParams,
        rowLimits: () => current().limits,
        session,
        onInternalError: (err) => log('error', `statement refused after an internal error: ${err.stack ?? err.message}`),
        sessionDefaults: sessionDefaults(bound.limits),
        names,
        masking: maskHub.session(session, target, names.path),
      });
    },
  };
  // Column masking: the section in force is read per statement, so an edit applies to the next one.
  const maskHub = new MaskHub({ dataDir: config.dataDir, masking: () => masking, openSide: (name) => openSide(name), log });
  const listener = new ProxyListener(ctx);
  let closed = false;
  const contract = createContractService({
    db, keys, identities, approvals, tap, targets: () => config.targets, configPath: deps.configPath ?? null,
    policy: () => ({ version: policyVersion, text: policyText }),
    reloadConfig: () => { watcher?.check(); return !configBroken; },
    connectionCount: () => listener.connectionCount,
    startedAt: Date.now(),
    rules: () => ({ policy, masking, version: policyVersion }),
    openSide, listenAddress: () => listenAddress, demo: deps.demo ?? false,
    // "Try it" previews masked columns with the same MaskSession a real session would get.
    maskSession: (info) => { const t = targets.get(info.target); return t ? maskHub.session(info, t, new SearchPathTracker(t.user, null)) : null; },
    names: (info) => { const t = targets.get(info.target); return t ? maskHub.names(info, t) : null; },
  });

  return {
    db, keys, identities, audit, approvals, events, contract,
    async listen() {
      // PostgreSQL's parser (WASM) is loaded before the first client can send a statement.
      await loadParser();
      listenAddress = await listener.listen(config.listen.host, config.listen.port);
      return listenAddress;
    },
    connectionCount: () => listener.connectionCount,
    reloadConfig() {
      watcher?.check();
      return !configBroken;
    },
    policyVersion: () => policyVersion,
    get paused() {
      return pausedBy !== null;
    },
    pause(operator) {
      if (pausedBy !== null) return;
      pausedBy = operator;
      audit.event('broker_paused', null, { operator });
      log('info', `paused by ${operator}: new sessions are refused`);
    },
    resume(operator) {
      if (pausedBy === null) return;
      pausedBy = null;
      audit.event('broker_resumed', null, { operator });
      log('info', `resumed by ${operator}: new sessions are accepted`);
    },
    async close(reason = 'Sluice is shutting down') {
      if (closed) return;
      closed = true;
      watcher?.close();
      approvals.close(reason);
      await listener.close(reason);
      maskHub.close();
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
