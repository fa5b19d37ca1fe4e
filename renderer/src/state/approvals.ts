import { useCallback, useEffect, useState } from 'react';
import type { PendingApproval, ResolvedApproval } from '../../../src/contract/api.js';
import { useClient, useEvents } from './console-context.js';

export interface ApprovalsState {
  pending: PendingApproval[];
  /** Most recent first, the last few decisions (from any window or the CLI). */
  recent: ResolvedApproval[];
}

/**
 * Pending approvals kept live from events, so a decision taken in another window (or with `sluice approve`)
 * removes the card here too. Reloaded in full whenever the connection (re)opens: events missed while
 * disconnected are not replayed.
 */
export function useApprovals(): ApprovalsState {
  const client = useClient();
  const [pending, setPending] = useState<PendingApproval[]>([]);
  const [recent, setRecent] = useState<ResolvedApproval[]>([]);

  useEffect(() => client.onState((s) => {
    if (s.kind === 'open') client.listApprovals({}).then(setPending, () => {});
  }), [client]);

  const onEvents = useCallback((events: { type: string; approval: PendingApproval | ResolvedApproval }[]) => {
    setPending((list) => {
      let next = list;
      for (const e of events) {
        if (e.type === 'approval_resolved') next = next.filter((a) => a.id !== e.approval.id);
        else {
          const a = e.approval as PendingApproval;
          next = next.some((x) => x.id === a.id) ? next.map((x) => (x.id === a.id ? a : x)) : [...next, a];
        }
      }
      return next;
    });
    const resolved = events.filter((e) => e.type === 'approval_resolved').map((e) => e.approval as ResolvedApproval);
    if (resolved.length) setRecent((r) => [...resolved.reverse(), ...r].slice(0, 20));
  }, []);
  useEvents(['approval_requested', 'approval_updated', 'approval_resolved'], onEvents);
  return { pending, recent };
}
