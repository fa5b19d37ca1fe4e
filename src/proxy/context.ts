import type tls from 'node:tls';
import type { AuditLog } from '../audit/audit-log.js';
import type { AuthOutcome } from '../identity/authenticator.js';
import type { ApprovalQueue } from '../approvals/queue.js';
import type { CancelRegistry } from './cancel-registry.js';
import type { StatementGate } from './statement-gate.js';
import type { UpstreamTarget } from './upstream.js';

export interface ProxyLimits {
  maxClientConnections: number;
  maxMessageBytes: number;
  maxServerMessageBytes: number;
  authTimeoutMs: number;
  connectTimeoutMs: number;
}

/** What the proxy needs from the rest of the broker; the broker wires the real stores in. */
export interface ProxyContext {
  limits: ProxyLimits;
  /** Client-facing TLS; absent means SSLRequest is answered 'N'. */
  tls: tls.SecureContext | undefined;
  targets: ReadonlyMap<string, UpstreamTarget>;
  resolvePassword(target: UpstreamTarget): string | undefined;
  /** Checks the password (agent key or OIDC token) for the startup user; rejects only when a store fails. */
  authenticate(user: string, secret: string): Promise<AuthOutcome>;
  audit: Pick<AuditLog, 'openSession' | 'endSession' | 'record' | 'complete' | 'event'>;
  cancels: CancelRegistry;
  /** Where `review` statements wait for an operator; absent: they are refused at once. */
  approvals?: ApprovalsPort;
  /** Sessions past StartupMessage, counted against maxClientConnections. */
  activeSessions: Set<object>;
  log(level: 'info' | 'warn' | 'error', msg: string): void;
  /** The statement gate of a new session: classification and the policy in force, bound to who is connected. */
  createGate(session: SessionInfo): StatementGate;
}

/** Who is connected, as policy sees it. */
export interface SessionInfo {
  identity: { name: string; groups: string[] };
  target: string;
  applicationName: string | null;
  clientAddr: string;
  /** search_path from the client's startup packet (masking resolves unqualified names with it); null: none. */
  startupSearchPath?: string | null;
}

/** What a session needs of the approval queue. */
export type ApprovalsPort = Pick<ApprovalQueue, 'request' | 'void' | 'sessionAllows' | 'redeem'>;
