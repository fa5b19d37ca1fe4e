import type { ImpactEstimate, PendingApproval } from '../contract/api.js';
import type { SideConnection } from '../proxy/side-connection.js';
import { estimableStatement, estimateImpact } from './impact.js';

/**
 * The queue's `estimate` hook over side connections: one short-lived connection per estimate, only for statements
 * that get one (approvals are rare; a pooled connection would sit idle holding a server slot).
 */
export function sideConnectionEstimator(
  open: (target: string) => Promise<SideConnection>,
  opts: { timeoutMs?: number } = {},
): (approval: PendingApproval, params: readonly (string | null)[] | null) => Promise<ImpactEstimate> {
  return async (approval, params) => {
    const target = estimableStatement(approval.statement);
    if (!target.ok) return { kind: 'not_applicable', reason: target.reason };
    let conn: SideConnection;
    try {
      conn = await open(approval.target);
    } catch (err) {
      return { kind: 'unavailable', reason: `no side connection to ${approval.target}: ${(err as Error).message}` };
    }
    try {
      return await estimateImpact(conn, approval.statement, params, opts);
    } finally {
      conn.close();
    }
  };
}
