/**
 * Result shapes of the operator console's capabilities (issue 7): "try it", target status, session export, hash
 * chain verification and the access review. Types only, re-exported by api.ts; like api.ts this file must stay
 * importable from a browser (no node:*, nothing else from src/).
 */
import type { StatementDecision } from './api.js';

/** What the running policy would decide for a statement, without running it. */
export interface TryStatementResult {
  /** The groups the identity was evaluated with (given, else those of its agent key or last login). */
  groups: string[];
  /** The statement does not parse or cannot be classified: Sluice refuses it whatever the rules say. */
  refused: { code: string; message: string; hint: string } | null;
  decision: StatementDecision;
  /** The deciding rule: a rule name, `builtin:<name>` or `default-deny`. */
  rule: string;
  message: string;
  hint: string;
  /** One line per statement of the text, in order. */
  statements: { text: string; class: string; decision: StatementDecision; rule: string; object: string | null }[];
  classes: string[];
  /** Objects as the audit writes them: 'r:public.users', 'w:public.orders', 'f:pg_sleep'. */
  tables: string[];
  /** Masked columns the statement would read; null when Sluice cannot say (see `masking`). */
  maskedColumns: string[] | null;
  /** Masking rules in force for this identity and target, and what the console can tell about them. */
  masking: { rules: { name: string; columns: string[] }[]; note: string };
  policyVersion: number;
}

export interface TargetStatus {
  name: string;
  /** A PostgreSQL login with the target's credential succeeded. */
  reachable: boolean;
  /** The server answered an SSLRequest with 'S' (it offers TLS); null when it could not be asked. */
  serverOffersTls: boolean | null;
  /** The target's configured TLS mode (what Sluice uses). */
  tlsMode: string;
  /** `server_version` as the server reports it; null when not reachable. */
  serverVersion: string | null;
  /** Why it is not reachable (connection refused, authentication failed, timeout...). */
  error: string | null;
  latencyMs: number | null;
  openSessions: number;
  checkedAt: number;
}

export interface SessionExport {
  sessionId: number;
  /** A file name the UI may offer for saving. */
  filename: string;
  /** JSON Lines: one `session` line, then the session's statements and events in chain order (the audit export's format). */
  jsonl: string;
  lines: number;
  /** More than the export limit: the file holds the first records only. */
  truncated: boolean;
}

export type ChainStatus =
  | { ok: true; rows: number; head: { seq: number; hash: string }; checkedAt: number }
  | {
      ok: false;
      rows: number;
      checkedAt: number;
      firstBad: { table: string; id: number; seq: number | null; problem: string; detail: string };
      /** The session the first bad record belongs to, when it is a statement or an event of one. */
      sessionId: number | null;
    };

export interface AccessReviewIdentity {
  identity: string;
  hasKey: boolean;
  groups: string[];
  createdAt: number | null;
  expiresAt: number | null;
  revokedAt: number | null;
  status: 'active' | 'expired' | 'revoked' | 'no-key';
  lastUsedAt: number | null;
  sessions: number;
  statements: number;
  classes: Record<string, number>;
  refusals: { deny: number; review: number; topRules: { rule: string; count: number }[] };
  unused: boolean;
}

/** `sluice review` as data. */
export interface AccessReviewData {
  generatedAt: number;
  since: number | null;
  unusedDays: number;
  identities: AccessReviewIdentity[];
  unusedKeys: { identity: string; createdAt: number; lastUsedAt: number | null; idleDays: number }[];
  rules: {
    neverMatched: string[] | null;
    note: string;
    builtinRefusals: { rule: string; count: number }[];
    defaultDeny: number;
  };
}

/** Where clients connect, for the first-run help (the exact psql line). */
export interface ConnectInfo {
  host: string;
  port: number;
  targets: string[];
  /** Sluice runs the embedded demo database (no config file). */
  demo: boolean;
  /** Agent key names that are active, for the example line. */
  activeKeys: string[];
}
