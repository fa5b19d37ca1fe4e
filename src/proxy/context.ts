import type tls from 'node:tls';
import type { AuditLog } from '../audit/audit-log.js';
import type { KeyCheck } from '../identity/agent-keys.js';
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
  verifyKey(name: string, secret: string): Promise<KeyCheck>;
  audit: Pick<AuditLog, 'openSession' | 'endSession' | 'record' | 'complete'>;
  cancels: CancelRegistry;
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
}
