/**
 * The broker's implementation of the contract (src/contract/api.ts), in process. Transports (WebSocket here, IPC in
 * the Electron shell) call `dispatch`, which validates the arguments with the method's zod schema first: nothing
 * from outside reaches a handler unvalidated.
 */
import { userInfo } from 'node:os';
import { stringify } from 'yaml';
import type { DataStore } from '../audit/db.js';
import { REQUEST_SCHEMAS, toIssues, type IdentitySummary, type Method, type Results, type ValidArgs } from '../contract/api.js';
import type { TargetConfig } from '../config/model.js';
import type { AgentKeyStore } from '../identity/agent-keys.js';
import { ApprovalAuditError, type ApprovalQueue } from '../approvals/queue.js';
import { ContractError } from './errors.js';
import { listSessions, listStatements } from './queries.js';
import { checkRules, putRules, readRulesText, RULE_SECTIONS, rulesJsonSchema, sha256 } from './rules.js';
import type { AuditTap } from './tap.js';
import { createConsoleHandlers, type ConsoleDeps } from './console-service.js';

/** Who is calling, as recorded with every decision. */
export interface Caller {
  operator: string;
}

export type ContractHandlers = { [M in Method]: (args: ValidArgs<M>, caller: Caller) => Results[M] | Promise<Results[M]> };

export interface ServiceDeps {
  db: DataStore;
  keys: AgentKeyStore;
  identities: { list(): IdentitySummary[] };
  approvals: ApprovalQueue;
  tap: AuditTap;
  targets: () => readonly TargetConfig[];
  /** The config file rules are written to; null when running without one (demo). */
  configPath: string | null;
  /** The policy in force, as the broker records it (JSON text), and its version. */
  policy: () => { version: number; text: string };
  reloadConfig: () => boolean;
  connectionCount: () => number;
  startedAt: number;
  /** For the console's "try it", target status and connect help (console-service.ts). */
  rules: ConsoleDeps['rules'];
  openSide: ConsoleDeps['openSide'];
  listenAddress: ConsoleDeps['listenAddress'];
  demo: boolean;
  maskSession?: ConsoleDeps['maskSession'];
  names?: ConsoleDeps['names'];
}

/** The operator recorded for a transport: the OS account Sluice runs as (only it can read the token file). */
export function operatorFor(via: string): Caller {
  let user = 'operator';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (containers): keep the generic name
  }
  return { operator: `${user} via ${via}` };
}

export function createContractService(deps: ServiceDeps): ContractHandlers {
  return {
    ...createConsoleHandlers({ ...deps, openSessions: deps.tap.openSessions }),
    listApprovals: () => deps.approvals.list(),
    decide: (a, caller) => {
      try {
        return deps.approvals.decide(a.id, a, caller.operator);
      } catch (err) {
        if (err instanceof ApprovalAuditError) throw new ContractError('unavailable', err.message);
        throw err;
      }
    },
    listSessions: (a) => listSessions(deps.db, a),
    listStatements: (a) => {
      const rows = listStatements(deps.db, a);
      if (rows === null) throw new ContractError('not_found', `no session ${a.sessionId}`);
      return rows;
    },
    getRules: () => {
      const policy = deps.policy();
      const text = deps.configPath ? readRulesText(deps.configPath) : stringify({ policy: JSON.parse(policy.text) as unknown });
      return {
        text, sha256: sha256(text), source: deps.configPath, editable: deps.configPath !== null,
        sections: [...RULE_SECTIONS], schema: rulesJsonSchema(), policyVersion: policy.version,
      };
    },
    putRules: (a) => {
      if (!deps.configPath) throw new ContractError('unavailable', 'Sluice runs without a config file (demo): rules cannot be saved; start it with --config FILE');
      const result = putRules(deps.configPath, a.text, a.baseSha256, () => {
        if (!deps.reloadConfig()) throw new ContractError('internal', 'the config file was written but the broker refused it; see the broker log');
      });
      return result.applied ? { ...result, policyVersion: deps.policy().version } : result;
    },
    checkRules: (a) => ({ problems: checkRules(deps.configPath, a.text) }),
    listKeys: () => deps.keys.list(),
    addKey: (a) => {
      try {
        const { secret } = deps.keys.add(a.name, { groups: a.groups, ...(a.expiresAt !== undefined ? { expiresAt: a.expiresAt } : {}) });
        return { name: a.name, secret, expiresAt: a.expiresAt ?? null };
      } catch (err) {
        const message = (err as Error).message;
        throw new ContractError(/already exists/.test(message) ? 'conflict' : 'invalid_arguments', message);
      }
    },
    revokeKey: (a) => ({ revoked: deps.keys.revoke(a.name) }),
    listIdentities: () => deps.identities.list(),
    listTargets: () => {
      const open = new Map<string, number>();
      for (const t of deps.tap.openSessions.values()) open.set(t, (open.get(t) ?? 0) + 1);
      return deps.targets().map((t) => ({
        name: t.name, host: t.host, port: t.port, database: t.database, user: t.user, tlsMode: t.tls.mode,
        openSessions: open.get(t.name) ?? 0,
      }));
    },
    getStats: () => ({
      startedAt: deps.startedAt,
      connections: deps.connectionCount(),
      openSessions: deps.tap.openSessions.size,
      pendingApprovals: deps.approvals.size,
      policyVersion: deps.policy().version,
      statements: { ...deps.tap.counts },
    }),
  };
}

/** Validate, then call. Throws ContractError for every expected failure. */
export async function dispatch(handlers: ContractHandlers, method: string, args: unknown, caller: Caller): Promise<unknown> {
  if (!Object.hasOwn(REQUEST_SCHEMAS, method)) throw new ContractError('unknown_method', `unknown method "${method}"`);
  const m = method as Method;
  const parsed = REQUEST_SCHEMAS[m].safeParse(args ?? {});
  if (!parsed.success) throw new ContractError('invalid_arguments', `invalid arguments for ${m}`, toIssues(parsed.error));
  const handler = handlers[m] as (a: unknown, c: Caller) => unknown;
  return await handler(parsed.data, caller);
}
