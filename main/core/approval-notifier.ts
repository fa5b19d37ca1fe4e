/**
 * A desktop notification per pending approval: who asks, on which target, what the statement is. Approve and Deny
 * buttons where the platform has them; a click opens the inbox on that approval. The notification goes away when
 * the approval is settled anywhere (inbox, CLI, deadline, client gone).
 *
 * The Approve button is offered only when the notification shows the whole statement and the statement holds no
 * invisible or reordering characters: an operator must not grant what they could not read. Otherwise the popup
 * says why and offers Deny only; approving happens in the inbox, which shows every character.
 */
import type { DecideResult, PendingApproval, SluiceEvent } from '../../src/contract/api.js';
import type { EventBus } from '../../src/operator/event-bus.js';
import { dispatch, type Caller, type ContractHandlers } from '../../src/operator/service.js';
import type { LogFn, NotificationHandle, NotificationPort, NotificationSpec } from './ports.js';

/** Longest statement text a notification body shows whole (platforms cut bodies not far above this). */
export const MAX_SHOWN_STATEMENT = 180;
export const DENY_REASON = 'denied from the desktop notification';

export type NotificationAction = 'approve' | 'deny';

export interface ApprovalNotice {
  spec: NotificationSpec;
  /** What each button index does (same order as spec.actions). */
  actions: NotificationAction[];
}

/** What the popup for `a` says and offers (pure: tested on its own). */
export function approvalNotice(a: PendingApproval, actionsSupported: boolean): ApprovalNotice {
  const oneLine = a.formatted.text.replace(/\s+/g, ' ').trim();
  const whole = oneLine.length <= MAX_SHOWN_STATEMENT;
  const shown = whole ? oneLine : `${oneLine.slice(0, MAX_SHOWN_STATEMENT - 1)}…`;
  const clean = a.formatted.warnings.length === 0;
  const notes: string[] = [];
  if (!clean) notes.push(`⚠ ${a.formatted.warnings[0]}: open the inbox to read it`);
  else if (!whole) notes.push('Statement shortened: open the inbox to read all of it');
  const classes = a.classes.length > 0 ? ` (${a.classes.join(', ')})` : '';
  const body = [shown, ...notes].join('\n');
  const actions: NotificationAction[] = !actionsSupported ? [] : clean && whole ? ['approve', 'deny'] : ['deny'];
  return {
    spec: {
      title: `Approve? ${a.identity} on ${a.target}${classes}`,
      body,
      actions: actions.map((x) => (x === 'approve' ? 'Approve once' : 'Deny')),
    },
    actions,
  };
}

export interface ApprovalNotifierOptions {
  bus: Pick<EventBus, 'on'>;
  handlers: ContractHandlers;
  notifications: NotificationPort;
  caller: Caller;
  /** Show the window on the inbox, with this approval selected. */
  openInbox(approvalId: string): void;
  log: LogFn;
}

export class ApprovalNotifier {
  private readonly shown = new Map<string, NotificationHandle>();
  private readonly unsubscribe: () => void;

  constructor(private readonly opts: ApprovalNotifierOptions) {
    this.unsubscribe = opts.bus.on((e) => this.onEvent(e));
  }

  /** Approvals that have a notification on screen. */
  get open(): string[] {
    return [...this.shown.keys()];
  }

  close(): void {
    this.unsubscribe();
    for (const n of this.shown.values()) n.close();
    this.shown.clear();
  }

  private onEvent(e: SluiceEvent): void {
    if (e.type === 'approval_requested') this.notify(e.approval);
    else if (e.type === 'approval_resolved') this.dismiss(e.approval.id);
  }

  private notify(a: PendingApproval): void {
    const port = this.opts.notifications;
    if (!port.isSupported() || this.shown.has(a.id)) return;
    const notice = approvalNotice(a, port.actionsSupported);
    const n = port.create(notice.spec);
    this.shown.set(a.id, n);
    n.onAction((index) => {
      const action = notice.actions[index];
      if (action) void this.decide(a.id, action);
    });
    n.onClick(() => this.opts.openInbox(a.id));
    n.onClose(() => {
      if (this.shown.get(a.id) === n) this.shown.delete(a.id);
    });
    n.show();
  }

  private dismiss(id: string): void {
    const n = this.shown.get(id);
    if (!n) return;
    this.shown.delete(id);
    n.close();
  }

  /** Goes through dispatch like every other caller: validated, recorded with the operator, late clicks told so. */
  private async decide(id: string, action: NotificationAction): Promise<void> {
    const args = action === 'approve' ? { id, decision: 'approve_once' } : { id, decision: 'deny', reason: DENY_REASON };
    try {
      const result = (await dispatch(this.opts.handlers, 'decide', args, this.opts.caller)) as DecideResult;
      if (result.outcome !== 'applied') {
        this.opts.log('warn', `approval ${id}: ${result.message}`);
        // Settled elsewhere meanwhile: show the inbox so the operator sees what happened.
        this.opts.openInbox(id);
      }
    } catch (err) {
      this.opts.log('error', `approval ${id}: the decision from the notification failed: ${(err as Error).message}`);
      this.opts.openInbox(id);
    }
  }
}
