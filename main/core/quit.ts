/**
 * What quitting the desktop app does to the broker it runs, in this order:
 * 1. new sessions are refused (pause), so nothing new can start waiting;
 * 2. every statement still waiting for an operator is denied (a recorded operator decision: the client reads
 *    42501 "statement denied by operator ...: <reason>", not a bare disconnect); closing waits until the refusals
 *    are recorded (at most DENIAL_DELIVERY_MS) plus a short grace for their answers to cross the wire: if that is
 *    not enough the client reads the shutdown FATAL instead, refused either way;
 * 3. every session is closed with the reason recorded as its end (anything that started waiting meanwhile is
 *    voided by the queue's close);
 * 4. the audit store is flushed and closed (broker.close).
 */
import type { DecideResult } from '../../src/contract/api.js';
import { dispatch, type Caller, type ContractHandlers } from '../../src/operator/service.js';
import type { EventBus } from '../../src/operator/event-bus.js';
import type { LogFn } from './ports.js';

export const QUIT_REASON = 'the operator quit the Sluice desktop app';
export const DENIAL_DELIVERY_MS = 2000;
export const DENIAL_ANSWER_GRACE_MS = 250;

export interface QuittableBroker {
  readonly contract: ContractHandlers;
  readonly events: Pick<EventBus, 'on'>;
  pause(operator: string): void;
  close(reason?: string): Promise<void>;
}

export interface QuitReport {
  denied: string[];
  /** Approvals that were settled some other way while we were denying (they changed nothing). */
  notApplied: string[];
}

export async function quitBroker(broker: QuittableBroker, caller: Caller, log: LogFn, reason = QUIT_REASON): Promise<QuitReport> {
  const report: QuitReport = { denied: [], notApplied: [] };
  broker.pause(caller.operator);
  const pending = await broker.contract.listApprovals({}, caller);
  // Sessions whose denial has not been recorded (= sent) yet.
  const undelivered = new Set<number>();
  let delivered = () => {};
  const stop = broker.events.on((e) => {
    if (e.type === 'statement_decided' && undelivered.delete(e.statement.sessionId) && undelivered.size === 0) delivered();
  });
  for (const a of pending) {
    try {
      const r = (await dispatch(broker.contract, 'decide', { id: a.id, decision: 'deny', reason }, caller)) as DecideResult;
      (r.outcome === 'applied' ? report.denied : report.notApplied).push(a.id);
      if (r.outcome === 'applied') undelivered.add(a.sessionId);
    } catch (err) {
      // The queue still voids it in close(); the client is refused either way.
      log('error', `quit: approval ${a.id} could not be denied: ${(err as Error).message}`);
      report.notApplied.push(a.id);
    }
  }
  // Closing at once would overtake the denials with the shutdown FATAL.
  if (undelivered.size > 0) {
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      delivered = resolve;
      timer = setTimeout(resolve, DENIAL_DELIVERY_MS);
    });
    clearTimeout(timer);
  }
  stop();
  // The answer to a refused statement still waits for the server's ReadyForQuery (one loopback round trip).
  if (report.denied.length > 0) await new Promise((r) => setTimeout(r, DENIAL_ANSWER_GRACE_MS));
  await broker.close(reason);
  log('info', `quit: ${report.denied.length} waiting statement(s) denied, sessions closed, audit store flushed`);
  return report;
}
