/**
 * Approval popups with the notification API injected and a real approval queue behind the contract's decide:
 * a button press becomes a recorded operator decision that releases (or refuses) the held statement.
 */
import { describe, expect, it } from 'vitest';
import { ApprovalQueue, type ApprovalRequestInfo } from '../../../src/approvals/queue.js';
import { EventBus } from '../../../src/operator/event-bus.js';
import type { ContractHandlers } from '../../../src/operator/service.js';
import { ApprovalNotifier, approvalNotice, DENY_REASON } from '../../../main/core/approval-notifier.js';
import type { NotificationPort, NotificationSpec } from '../../../main/core/ports.js';

const OPERATOR = 'op via desktop app';

function setup(actionsSupported = true) {
  const bus = new EventBus();
  const audited: { kind: string; detail: unknown }[] = [];
  const queue = new ApprovalQueue({ audit: { event: (kind, _s, detail) => audited.push({ kind, detail }) }, emit: (e) => bus.emit(e) });
  const handlers = {
    listApprovals: () => queue.list(),
    decide: (a: { id: string; decision: 'approve_once' | 'approve_session' | 'deny'; reason?: string }, c: { operator: string }) => queue.decide(a.id, a as never, c.operator),
  } as unknown as ContractHandlers;
  const shown: { spec: NotificationSpec; action(i: number): void; click(): void; closed: boolean }[] = [];
  const port: NotificationPort = {
    isSupported: () => true,
    actionsSupported,
    create(spec) {
      const n = { spec, action: (_i: number) => {}, click: () => {}, closed: false, close: () => {} };
      shown.push(n);
      return {
        show: () => {},
        close: () => { n.closed = true; n.close(); },
        onAction: (l) => { n.action = l; },
        onClick: (l) => { n.click = l; },
        onClose: (l) => { n.close = l; },
      };
    },
  };
  const inbox: string[] = [];
  const logs: string[] = [];
  const notifier = new ApprovalNotifier({ bus, handlers, notifications: port, caller: { operator: OPERATOR }, openInbox: (id) => inbox.push(id), log: (_l, m) => logs.push(m) });
  const request = (statement = 'DELETE FROM orders WHERE id = 7') => queue.request(info(statement));
  return { queue, shown, inbox, logs, notifier, request, audited };
}

function info(statement: string): ApprovalRequestInfo {
  return { sessionId: 1, identity: 'ci-bot', target: 'shop', applicationName: null, statement, classes: ['write'], tables: ['w:public.orders'], params: null, shapeKey: 's', bytesHash: 'b' };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('approval notifications', () => {
  it('shows who asks and what, and Approve releases the statement as a decision of the desktop operator', async () => {
    const s = setup();
    const { id, decision } = s.request();
    expect(s.shown).toHaveLength(1);
    expect(s.shown[0]!.spec).toEqual({ title: 'Approve? ci-bot on shop (write)', body: 'DELETE FROM orders WHERE id = 7', actions: ['Approve once', 'Deny'] });
    s.shown[0]!.action(0);
    await expect(decision).resolves.toMatchObject({ kind: 'approved', scope: 'once', approvalId: id, operator: OPERATOR });
    await settle();
    expect(s.shown[0]!.closed).toBe(true);
    expect(s.notifier.open).toEqual([]);
    expect(s.audited.at(-1)).toMatchObject({ kind: 'approval_resolved', detail: { approvalId: id, resolution: 'approved_once', operator: OPERATOR } });
  });

  it('Deny refuses the statement with a recorded reason', async () => {
    const s = setup();
    const { decision } = s.request();
    s.shown[0]!.action(1);
    await expect(decision).resolves.toMatchObject({ kind: 'denied', timedOut: false, refusal: { code: '42501', message: expect.stringContaining(DENY_REASON) } });
  });

  it('a click opens the inbox on that approval; a settled approval closes its popup', async () => {
    const s = setup();
    const { id } = s.request();
    s.shown[0]!.click();
    expect(s.inbox).toEqual([id]);
    s.queue.decide(id, { decision: 'deny', reason: 'from the inbox' }, 'someone');
    expect(s.shown[0]!.closed).toBe(true);
    // A late button press changes nothing, says so, and shows the inbox.
    s.shown[0]!.action(0);
    await settle();
    expect(s.logs.join('\n')).toMatch(/already settled/);
    expect(s.inbox).toEqual([id, id]);
  });

  it('offers no buttons where the platform has none (a click still opens the inbox)', () => {
    const s = setup(false);
    s.request();
    expect(s.shown[0]!.spec.actions).toEqual([]);
  });

  it('offers only Deny when the popup cannot show the whole statement or it hides characters', () => {
    const s = setup();
    s.request(`UPDATE t SET v = 1 WHERE id = 1 ${'-- pad '.repeat(40)}`);
    expect(s.shown[0]!.spec.actions).toEqual(['Deny']);
    expect(s.shown[0]!.spec.body).toMatch(/shortened: open the inbox/);
    s.request('DELETE FROM t WHERE owner = \'admin\u202E\u2066\' -- \u2069\u2066');
    expect(s.shown[1]!.spec.actions).toEqual(['Deny']);
    expect(s.shown[1]!.spec.body).toMatch(/⚠ .*open the inbox/);
  });

  it('approvalNotice maps button indexes to actions in the same order', () => {
    const a = { identity: 'x', target: 'y', classes: [], formatted: { text: 'SELECT 1', segments: [], warnings: [] } };
    expect(approvalNotice(a as never, true).actions).toEqual(['approve', 'deny']);
    expect(approvalNotice(a as never, true).spec.title).toBe('Approve? x on y');
  });
});
