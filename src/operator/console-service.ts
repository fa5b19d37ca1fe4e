/**
 * The operator console's capabilities (issue 7) over the broker's public parts: "try it" with the running
 * policy and classifier, target status, session export, hash chain verification, access review, connect help.
 * service.ts holds the older methods; both are one ContractHandlers object.
 */
import { connect } from 'node:net';
import { accessReview } from '../audit/review.js';
import { exportAudit } from '../audit/export.js';
import { verifyAudit } from '../audit/verify.js';
import type { DataStore } from '../audit/db.js';
import type { ChainStatus, Results, TargetStatus, ValidArgs } from '../contract/api.js';
import type { TargetConfig } from '../config/model.js';
import type { AgentKeyStore } from '../identity/agent-keys.js';
import { bindMasking, type Masking } from '../masking/index.js';
import { bindPolicy } from '../policy/evaluate.js';
import type { Policy } from '../policy/model.js';
import type { SessionInfo } from '../proxy/context.js';
import type { MaskSession } from '../proxy/mask-session.js';
import type { SessionNames } from '../proxy/names.js';
import type { SideConnection } from '../proxy/side-connection.js';
import { objectsOf } from '../proxy/statement-gate.js';
import { classify } from '../sql/classify.js';
import { loadParser } from '../sql/parser.js';
import { ContractError } from './errors.js';

export interface ConsoleDeps {
  db: DataStore;
  keys: AgentKeyStore;
  identities: { list(): { name: string; groups: string[] }[] };
  targets: () => readonly TargetConfig[];
  openSessions: ReadonlyMap<number, string>;
  /** The policy and masking rules in force. */
  rules: () => { policy: Policy; masking: Masking | undefined; version: number };
  /** A logged-in connection to a target with its own credential (the one approvals' EXPLAIN uses). */
  openSide: (target: string) => Promise<SideConnection>;
  /** The proxy's bound address; null before listen(). */
  listenAddress: () => { host: string; port: number } | null;
  demo: boolean;
  /** Masking as a session of this identity would have it (the proxy's own MaskSession); null: unknown target. */
  maskSession?: (info: SessionInfo) => MaskSession | null;
  /** Unqualified names as a new session would resolve them (proxy/names.ts); null: unknown target. */
  names?: (info: SessionInfo) => SessionNames | null;
}

/** A session's export stops here: the console offers it as one download. */
const EXPORT_LIMIT_LINES = 20_000;
const PROBE_TIMEOUT_MS = 3000;
const RANK = { allow: 0, review: 1, deny: 2 } as const;

export type ConsoleHandlers = {
  [M in 'tryStatement' | 'checkTargets' | 'exportSession' | 'verifyChain' | 'accessReview' | 'getConnectInfo']:
    (args: ValidArgs<M>) => Results[M] | Promise<Results[M]>;
};

export function createConsoleHandlers(deps: ConsoleDeps): ConsoleHandlers {
  return {
    tryStatement: async (a) => {
      await loadParser();
      const { policy, masking, version } = deps.rules();
      const groups = a.groups ?? knownGroups(deps, a.identity);
      const who = { identity: { name: a.identity, groups }, target: a.target };
      const maskRules = bindMasking(masking, who).rules.map((r) => ({ name: r.name, columns: r.patterns.map((p) => p.join('.')) }));
      const maskingPart = { rules: maskRules, note: maskRules.length === 0 ? 'No masking rule applies to this identity and target.' : '' };
      const parsed = classify(a.sql);
      if (!parsed.ok) {
        return {
          groups, refused: { code: parsed.code, message: parsed.message, hint: parsed.hint }, decision: 'deny', rule: 'sluice:parse',
          message: parsed.message, hint: parsed.hint, statements: [], classes: [], tables: [], maskedColumns: null, masking: maskingPart,
          policyVersion: version,
        };
      }
      const info = { ...who, applicationName: a.applicationName ?? null, clientAddr: '127.0.0.1' };
      // Decided as the first statement of a new session would be: names resolved with the role's default path.
      const names = deps.names?.(info) ?? null;
      await names?.start(PROBE_TIMEOUT_MS);
      const resolved = names ? names.qualify(parsed.statements) : parsed.statements;
      const d = bindPolicy(policy, info).decide(resolved);
      const base = {
        groups, refused: null, decision: d.decision, rule: d.rule, message: d.message, hint: d.hint,
        statements: d.statements.map((v, i) => ({ text: parsed.statements[i]?.text ?? '', class: v.class, decision: v.decision, rule: v.rule, object: v.object })),
        classes: [...new Set(parsed.statements.map((s) => s.class))], tables: objectsOf(resolved),
        maskedColumns: null as string[] | null, masking: maskingPart, policyVersion: version,
      };
      const ms = maskRules.length > 0 ? deps.maskSession?.(info) ?? null : null;
      if (maskRules.length === 0) return { ...base, maskedColumns: [] };
      if (!ms) return base;
      try {
        // The target's catalog says which columns a statement reads; loading it needs the database.
        await withTimeout(ms.prepare(), PROBE_TIMEOUT_MS);
      } catch (err) {
        return { ...base, masking: { ...maskingPart, note: `Masked columns unknown: the catalog of "${a.target}" could not be loaded (${(err as Error).message}).` } };
      }
      const m = ms.decide(a.sql, parsed.statements, () => null);
      const out = { ...base, maskedColumns: m.maskedColumns, masking: { ...maskingPart, note: 'Masked columns as the proxy would resolve them now, from the target\'s catalog.' } };
      // As in the proxy: the most restrictive of policy and masking decides.
      if (m.refusal && RANK[m.verdict] > RANK[d.decision]) {
        return { ...out, decision: m.verdict, rule: m.refusal.rule, message: m.refusal.message, hint: m.refusal.hint };
      }
      return out;
    },
    checkTargets: async (a) => {
      const targets = deps.targets().filter((t) => a.name === undefined || t.name === a.name);
      if (a.name !== undefined && targets.length === 0) throw new ContractError('not_found', `no target "${a.name}"`);
      return Promise.all(targets.map((t) => probeTarget(t, deps)));
    },
    exportSession: (a) => {
      const session = deps.db.prepare('SELECT id, started_at AS startedAt FROM sessions WHERE id = ?').get(a.sessionId) as { id: number; startedAt: number } | undefined;
      if (!session) throw new ContractError('not_found', `no session ${a.sessionId}`);
      const lines: string[] = [];
      let truncated = false;
      // The audit export walks everything from the session's start in chain order; keep this session's lines.
      const stop = new Error('export limit');
      try {
        exportAudit(deps.db, { since: new Date(session.startedAt), format: 'jsonl' }, (line) => {
          const v = JSON.parse(line) as { session: { id: number } | null };
          if (v.session?.id !== a.sessionId) return;
          if (lines.length >= EXPORT_LIMIT_LINES) { truncated = true; throw stop; }
          lines.push(line);
        });
      } catch (err) {
        if (err !== stop) throw err;
      }
      return {
        sessionId: a.sessionId, filename: `sluice-session-${a.sessionId}.jsonl`, jsonl: lines.length ? `${lines.join('\n')}\n` : '',
        lines: lines.length, truncated,
      };
    },
    verifyChain: () => chainStatus(deps.db),
    accessReview: (a) => accessReview(deps.db, {
      unusedDays: a.unusedDays, policy: deps.rules().policy, ...(a.since === undefined ? {} : { since: a.since }),
    }),
    getConnectInfo: () => {
      const addr = deps.listenAddress();
      return {
        host: addr?.host ?? '127.0.0.1', port: addr?.port ?? 0, targets: deps.targets().map((t) => t.name), demo: deps.demo,
        activeKeys: deps.keys.list().filter((k) => k.status === 'active').map((k) => k.name),
      };
    },
  };
}

function knownGroups(deps: ConsoleDeps, identity: string): string[] {
  const key = deps.keys.list().find((k) => k.name === identity && k.status === 'active');
  if (key) return key.groups;
  return deps.identities.list().find((i) => i.name === identity)?.groups ?? [];
}

export function chainStatus(db: DataStore): ChainStatus {
  const checkedAt = Date.now();
  const r = verifyAudit(db);
  if (r.ok) return { ok: true, rows: r.rows, head: r.head, checkedAt };
  const { table, id } = r.firstBad;
  let sessionId: number | null = null;
  if (table === 'statements' || table === 'audit_events') {
    const row = db.prepare(`SELECT session_id AS s FROM ${table} WHERE id = ?`).get(id) as { s: number | null } | undefined;
    sessionId = row?.s ?? null;
  }
  return { ok: false, rows: r.rows, checkedAt, firstBad: { ...r.firstBad }, sessionId };
}

async function probeTarget(t: TargetConfig, deps: ConsoleDeps): Promise<TargetStatus> {
  const openSessions = [...deps.openSessions.values()].filter((n) => n === t.name).length;
  const started = Date.now();
  const serverOffersTls = await sslProbe(t.host, t.port).catch(() => null);
  let side: SideConnection | null = null;
  try {
    side = await deps.openSide(t.name);
    const r = await side.query('SHOW server_version');
    return {
      name: t.name, reachable: true, serverOffersTls, tlsMode: t.tls.mode, serverVersion: r.rows[0]?.[0] ?? null, error: null,
      latencyMs: Date.now() - started, openSessions, checkedAt: Date.now(),
    };
  } catch (err) {
    return {
      name: t.name, reachable: false, serverOffersTls, tlsMode: t.tls.mode, serverVersion: null, error: (err as Error).message,
      latencyMs: null, openSessions, checkedAt: Date.now(),
    };
  } finally {
    side?.close();
  }
}

/**
 * SSLRequest (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-SSL): int32 length 8, int32
 * code 80877103; the server answers one byte, 'S' or 'N', before anything else. We close right after it.
 */
function sslProbe(host: string, port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('timeout')); }, PROBE_TIMEOUT_MS);
    socket.once('connect', () => {
      const req = Buffer.alloc(8);
      req.writeInt32BE(8, 0);
      req.writeInt32BE(80877103, 4);
      socket.write(req);
    });
    socket.once('data', (b) => { clearTimeout(timer); socket.destroy(); resolve(b[0] === 0x53); });
    socket.once('error', (err) => { clearTimeout(timer); reject(err); });
    socket.once('close', () => { clearTimeout(timer); reject(new Error('closed')); });
  });
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(timer));
}
