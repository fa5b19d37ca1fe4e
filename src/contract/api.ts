/**
 * The one typed API between the Sluice core and its operator UIs (the React renderer over IPC or WebSocket, the
 * `sluice approvals` CLI). Requests are methods with zod-validated arguments; events are pushed to every
 * subscriber. Adding a capability starts here: add the schema to REQUEST_SCHEMAS and its result to Results, and
 * the compiler points at the service, the transports and the clients that must follow.
 *
 * This file must stay importable from a browser: zod and types only, no node:* and nothing else from src/.
 */
import { z } from 'zod';
import type { AccessReviewData, ChainStatus, ConnectInfo, SessionExport, TargetStatus, TryStatementResult } from './console.js';

export type * from './console.js';

/** Bumped when a change is not backwards compatible; the server says it in its hello. */
export const CONTRACT_VERSION = 1;

// ---- Transport constants (WebSocket) -----------------------------------------------------------------------------

/** Path of the WebSocket endpoint on the loopback UI port. */
export const WS_PATH = '/api';
/** Subprotocol every client offers; the server selects it. */
export const WS_SUBPROTOCOL = 'sluice.v1';
/**
 * Browsers cannot set headers on a WebSocket, so they present the operator token as a second offered subprotocol
 * (`sluice.token.<token>`); other clients may send `Authorization: Bearer <token>` instead. Never in the URL: URLs
 * end up in logs and shell history.
 */
export const WS_TOKEN_PROTOCOL_PREFIX = 'sluice.token.';
/** Largest message a client may send, in bytes (a rules text is the largest legitimate request). */
export const MAX_REQUEST_BYTES = 2 * 1024 * 1024;

// ---- Shared shapes -----------------------------------------------------------------------------------------------

export type StatementDecision = 'allow' | 'deny' | 'review';

/**
 * A statement as the operator must read it: every character that could hide or reorder what runs (bidi controls,
 * zero-width and other invisible characters, control characters, look-alike spaces) is a `mark`, never raw text.
 * `text` is the same rendered for plain terminals: each mark as ⟦U+XXXX NAME⟧ (a literal ⟦ is itself a mark, so
 * the rendering cannot be forged).
 */
export type VisibleSegment =
  | { kind: 'text'; text: string }
  | { kind: 'mark'; codePoint: string; name: string; category: 'bidi' | 'invisible' | 'control' | 'space' | 'marker' };

export interface FormattedStatement {
  text: string;
  segments: VisibleSegment[];
  /** Short sentences for the operator, e.g. "contains bidirectional control characters (can reorder what you read)". */
  warnings: string[];
}

/** Rows a write would touch, from the planner: always an estimate, never a count. */
export type ImpactEstimate =
  | { kind: 'pending' }
  | {
      kind: 'estimate';
      rows: number;
      operation: 'insert' | 'update' | 'delete';
      /** schema.table written, when the plan names one. */
      relation: string | null;
      source: 'EXPLAIN (FORMAT JSON)';
    }
  | { kind: 'not_applicable'; reason: string }
  | { kind: 'unavailable'; reason: string };

/** A statement held on the wire until an operator decides. */
export interface PendingApproval {
  id: string;
  sessionId: number;
  identity: string;
  groups: string[];
  target: string;
  applicationName: string | null;
  clientAddr: string | null;
  /** The statement text as received. */
  statement: string;
  formatted: FormattedStatement;
  classes: string[];
  /** Objects touched as the audit writes them: 'r:public.users', 'w:public.orders', 'f:pg_sleep'. */
  tables: string[];
  columns: string[];
  maskedColumns: string[];
  /** The previous few statements of the session, oldest first. */
  recentStatements: string[];
  /** Bind parameters as the operator may see them (null: none; redacted values read "<redacted>"). */
  params: (string | null)[] | null;
  /** The policy rule that asked for review. */
  rule: string | null;
  requestedAt: number;
  deadlineAt: number;
  impact: ImpactEstimate;
}

export type ApprovalResolution =
  | { kind: 'approved_once'; operator: string; reason: string | null }
  | { kind: 'approved_session'; operator: string; reason: string | null }
  | { kind: 'denied'; operator: string; reason: string }
  | { kind: 'timed_out'; reason: string }
  /** The client cancelled or disconnected, the upstream was lost, or Sluice stopped. */
  | { kind: 'voided'; reason: string };

export interface ResolvedApproval {
  id: string;
  sessionId: number;
  identity: string;
  target: string;
  statement: string;
  requestedAt: number;
  resolvedAt: number;
  /** resolvedAt - requestedAt: the time the statement waited. */
  waitedMs: number;
  resolution: ApprovalResolution;
}

export type DecideResult =
  | { outcome: 'applied'; approval: ResolvedApproval }
  /** Nothing changed: the approval was unknown, or already decided, timed out or voided (then `approval` says how). */
  | { outcome: 'not_applied'; why: 'unknown' | 'already_resolved'; message: string; approval: ResolvedApproval | null };

export interface SessionSummary {
  id: number;
  identity: string;
  target: string;
  clientAddr: string;
  applicationName: string | null;
  startedAt: number;
  endedAt: number | null;
  endReason: string | null;
  statements: number;
  refusals: number;
}

export interface StatementSummary {
  id: number;
  sessionId: number;
  seq: number;
  receivedAt: number;
  protocol: 'simple' | 'parse' | 'execute';
  name: string | null;
  text: string;
  classes: string[];
  objects: string[];
  decision: StatementDecision | null;
  rule: string | null;
  reason: string | null;
  params: (string | null)[] | null;
  result: {
    completedAt: number;
    durationMs: number;
    rows: number | null;
    bytes: number | null;
    errorCode: string | null;
    errorMessage: string | null;
    /** Result columns Sluice masked (null: none). */
    maskedFields: number | null;
  } | null;
}

export interface RulesDocument {
  /** The rules sections (policy, masking) of the config file, as written there. */
  text: string;
  /** SHA-256 (hex) of `text`; pass it back to putRules to refuse overwriting someone else's edit. */
  sha256: string;
  /** The config file the rules live in; null when Sluice runs without one (then they cannot be edited). */
  source: string | null;
  editable: boolean;
  /** Top-level keys the text may hold. */
  sections: string[];
  /** JSON Schema of the rules text (for editor completion and validation). */
  schema: Record<string, unknown>;
  policyVersion: number;
}

export interface RuleProblem {
  /** 1-based, in the rules text (0 when the problem is elsewhere in the config file). */
  line: number;
  column: number;
  key: string;
  reason: string;
}

export type PutRulesResult =
  | { applied: true; policyVersion: number; sha256: string }
  | { applied: false; problems: RuleProblem[] };

export interface AgentKeySummary {
  name: string;
  groups: string[];
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
  lastUsedAt: number | null;
  status: 'active' | 'expired' | 'revoked';
}

/** An identity that has logged in (agent key or OIDC token): what the access review shows. */
export interface IdentitySummary {
  name: string;
  kind: 'key' | 'oidc';
  /** The token issuer; null for agent keys. */
  issuer: string | null;
  /** The claim value the name came from; null for agent keys. */
  subject: string | null;
  /** Groups as of the last login. */
  groups: string[];
  firstSeen: number;
  lastSeen: number;
}

export interface TargetSummary {
  name: string;
  host: string;
  port: number;
  database: string;
  user: string;
  tlsMode: string;
  openSessions: number;
}

export interface BrokerStats {
  startedAt: number;
  connections: number;
  openSessions: number;
  pendingApprovals: number;
  policyVersion: number;
  /** Statements decided since start, by decision. */
  statements: { allow: number; deny: number; review: number };
}

// ---- Requests ----------------------------------------------------------------------------------------------------

const approvalId = z.string().regex(/^[a-z0-9]{4,32}$/, { error: 'an approval id is 4-32 lowercase letters and digits' });
const reason = z.string().trim().max(1000, { error: 'at most 1000 characters' });
const millis = z.number().int().min(0);
const name63 = z.string().regex(/^[A-Za-z0-9_.@-]{1,63}$/, { error: '1-63 characters from A-Z a-z 0-9 _ . @ -' });
const none = z.strictObject({});

export const DecideArgsSchema = z.discriminatedUnion('decision', [
  z.strictObject({ id: approvalId, decision: z.literal('approve_once'), reason: reason.optional() }),
  z.strictObject({ id: approvalId, decision: z.literal('approve_session'), reason: reason.optional() }),
  z.strictObject({
    id: approvalId,
    decision: z.literal('deny'),
    reason: z.string({ error: 'a denial needs a reason' }).trim().min(1, { error: 'a denial needs a reason' }).max(1000, { error: 'at most 1000 characters' }),
  }),
]);

export const REQUEST_SCHEMAS = {
  listApprovals: none,
  decide: DecideArgsSchema,
  listSessions: z.strictObject({
    identity: z.string().min(1).max(128).optional(),
    target: z.string().min(1).max(128).optional(),
    /** Sessions active at some time in [since, until). */
    since: millis.optional(),
    until: millis.optional(),
    hadRefusals: z.boolean().optional(),
    /** Only sessions with a smaller id (paging, newest first). */
    beforeId: z.number().int().min(1).optional(),
    limit: z.number().int().min(1).max(1000).default(100),
  }),
  listStatements: z.strictObject({
    sessionId: z.number().int().min(1),
    afterSeq: z.number().int().min(0).default(0),
    limit: z.number().int().min(1).max(5000).default(1000),
  }),
  getRules: none,
  putRules: z.strictObject({
    text: z.string().max(MAX_REQUEST_BYTES / 2),
    baseSha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  }),
  /** The problems putRules would report for this text, without saving (the editor's live validation). */
  checkRules: z.strictObject({ text: z.string().max(MAX_REQUEST_BYTES / 2) }),
  listKeys: none,
  addKey: z.strictObject({
    name: name63,
    groups: z.array(z.string().regex(/^[^\s,]{1,128}$/, { error: '1-128 characters, no spaces or commas' })).max(64).default([]),
    expiresAt: millis.optional(),
  }),
  revokeKey: z.strictObject({ name: name63 }),
  listIdentities: none,
  listTargets: none,
  getStats: none,
  /** What the running policy decides for a statement, without running it (the rules editor's "try it"). */
  tryStatement: z.strictObject({
    identity: name63,
    /** Default: the groups of the identity's agent key, else of its last login. */
    groups: z.array(z.string().min(1).max(128)).max(64).optional(),
    target: z.string().min(1).max(128),
    sql: z.string().min(1, { error: 'type a statement' }).max(100_000),
    applicationName: z.string().max(64).optional(),
  }),
  /** Logs in to each target (or one) with its credential: reachable, TLS offered, server version. */
  checkTargets: z.strictObject({ name: z.string().min(1).max(128).optional() }),
  exportSession: z.strictObject({ sessionId: z.number().int().min(1) }),
  /** Walks the whole audit hash chain (it is one chain); says which session a break belongs to. */
  verifyChain: none,
  accessReview: z.strictObject({
    unusedDays: z.number().int().min(1).max(3650).default(30),
    since: millis.optional(),
  }),
  getConnectInfo: none,
} as const satisfies Record<string, z.ZodType>;

export type Method = keyof typeof REQUEST_SCHEMAS;
export const METHODS = Object.keys(REQUEST_SCHEMAS) as Method[];
/** Arguments as a caller writes them (defaults optional). */
export type Args<M extends Method> = z.input<(typeof REQUEST_SCHEMAS)[M]>;
/** Arguments after validation (defaults applied): what the implementation receives. */
export type ValidArgs<M extends Method> = z.output<(typeof REQUEST_SCHEMAS)[M]>;

export interface Results {
  listApprovals: PendingApproval[];
  decide: DecideResult;
  listSessions: SessionSummary[];
  listStatements: StatementSummary[];
  getRules: RulesDocument;
  putRules: PutRulesResult;
  checkRules: { problems: RuleProblem[] };
  listKeys: AgentKeySummary[];
  /** The secret is in this reply only; it is never stored or shown again. */
  addKey: { name: string; secret: string; expiresAt: number | null };
  revokeKey: { revoked: boolean };
  listIdentities: IdentitySummary[];
  listTargets: TargetSummary[];
  getStats: BrokerStats;
  tryStatement: TryStatementResult;
  checkTargets: TargetStatus[];
  exportSession: SessionExport;
  verifyChain: ChainStatus;
  accessReview: AccessReviewData;
  getConnectInfo: ConnectInfo;
}
// Fails to compile when a method has no result type or a result has no method.
const resultsComplete: [Exclude<Method, keyof Results>, Exclude<keyof Results, Method>] extends [never, never] ? true : never = true;
void resultsComplete;

/** What a UI calls. */
export type SluiceApi = { [M in Method]: (args: Args<M>) => Promise<Results[M]> };

// ---- Events ------------------------------------------------------------------------------------------------------

export type SluiceEvent =
  | { type: 'session_opened'; at: number; session: { id: number; identity: string; target: string; clientAddr: string; applicationName: string | null } }
  | { type: 'session_closed'; at: number; sessionId: number; reason: string }
  | {
      type: 'statement_decided';
      at: number;
      statement: {
        id: number;
        sessionId: number;
        /** Of the session, so a feed can filter without looking sessions up. */
        identity: string;
        target: string;
        receivedAt: number;
        protocol: 'simple' | 'parse' | 'execute';
        /** Cut at 4,000 characters for the feed; listStatements has the whole text. */
        text: string;
        decision: StatementDecision | null;
        rule: string | null;
        reason: string | null;
        classes: string[];
        objects: string[];
      };
    }
  /** How a forwarded statement ended (the feed's duration and rows). */
  | {
      type: 'statement_completed';
      at: number;
      result: { statementId: number; sessionId: number; durationMs: number; rows: number | null; errorCode: string | null; maskedFields: number | null };
    }
  | { type: 'approval_requested'; at: number; approval: PendingApproval }
  /** Something arrived after the request (the impact estimate). */
  | { type: 'approval_updated'; at: number; approval: PendingApproval }
  | { type: 'approval_resolved'; at: number; approval: ResolvedApproval }
  | { type: 'policy_changed'; at: number; policyVersion: number; sha256: string };

export type SluiceEventType = SluiceEvent['type'];

// ---- Wire envelope (WebSocket; IPC carries the same objects) -----------------------------------------------------

export const ClientMessageSchema = z.strictObject({
  /** Echoed in the reply so a client can have several requests in flight. */
  id: z.union([z.number().int().min(0).max(Number.MAX_SAFE_INTEGER), z.string().min(1).max(64)]),
  method: z.string().min(1).max(64),
  args: z.unknown().optional(),
});
export type ClientMessage = z.infer<typeof ClientMessageSchema>;

export type ApiErrorCode =
  | 'bad_request' // not JSON, or not a { id, method, args } message
  | 'unknown_method'
  | 'invalid_arguments' // the method's zod schema refused the arguments (see issues)
  | 'not_found'
  | 'conflict' // e.g. the rules changed since the caller read them
  | 'unavailable' // e.g. no config file to write rules to, or the audit store cannot be written
  | 'internal';

export interface ApiError {
  code: ApiErrorCode;
  message: string;
  issues?: { path: string; message: string }[];
}

export type ServerMessage =
  | { type: 'hello'; version: number; methods: Method[] }
  | { type: 'reply'; id: number | string | null; ok: true; result: unknown }
  | { type: 'reply'; id: number | string | null; ok: false; error: ApiError }
  /** Events are batched per event-loop turn so a busy feed costs one frame, not thousands. */
  | { type: 'events'; events: SluiceEvent[] };

/** zod issues as the contract reports them (path joined with dots). */
export function toIssues(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
}
