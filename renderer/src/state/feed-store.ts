/**
 * The live feed's memory, outside React: at 2,000 statements/s, a React state update per event would re-render
 * thousands of times a second. Events land in a bounded buffer; views read it at most a few times a second.
 */
import type { SluiceEvent, StatementDecision } from '../../../src/contract/api.js';
import type { ConsoleClient } from '../transport/transport.js';

export interface FeedRow {
  id: number;
  sessionId: number;
  identity: string;
  target: string;
  receivedAt: number;
  text: string;
  decision: StatementDecision | null;
  rule: string | null;
  reason: string | null;
  classes: string[];
  durationMs: number | null;
  rows: number | null;
  errorCode: string | null;
  /** Result columns Sluice masked (null: none, or not completed yet). */
  maskedFields: number | null;
}

export const FEED_CAPACITY = 20_000;
/** Seconds of history in the rate chart. */
export const CHART_SECONDS = 300;

export class FeedStore {
  /** Oldest first; trimmed in chunks so a busy feed does not shift the array on every event. */
  rows: FeedRow[] = [];
  private readonly byId = new Map<number, FeedRow>();
  /** Per second: [statements, refusals], keyed by epoch second. */
  readonly perSecond = new Map<number, [number, number]>();
  version = 0;
  private readonly listeners = new Set<() => void>();

  constructor(client: ConsoleClient) {
    client.onEvents((events) => this.add(events));
  }

  subscribe(l: () => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  add(events: readonly SluiceEvent[]): void {
    let changed = false;
    for (const e of events) {
      if (e.type === 'statement_decided') {
        const s = e.statement;
        const row: FeedRow = {
          id: s.id, sessionId: s.sessionId, identity: s.identity, target: s.target, receivedAt: s.receivedAt, text: s.text,
          decision: s.decision, rule: s.rule, reason: s.reason, classes: s.classes, durationMs: null, rows: null, errorCode: null, maskedFields: null,
        };
        this.rows.push(row);
        this.byId.set(row.id, row);
        const sec = Math.floor(e.at / 1000);
        const c = this.perSecond.get(sec) ?? [0, 0];
        c[0]++;
        if (s.decision === 'deny') c[1]++;
        this.perSecond.set(sec, c);
        changed = true;
      } else if (e.type === 'statement_completed') {
        const row = this.byId.get(e.result.statementId);
        if (row) {
          row.durationMs = e.result.durationMs;
          row.rows = e.result.rows;
          row.errorCode = e.result.errorCode;
          row.maskedFields = e.result.maskedFields;
          changed = true;
        }
      }
    }
    if (!changed) return;
    if (this.rows.length > FEED_CAPACITY * 1.1) {
      for (const r of this.rows.splice(0, this.rows.length - FEED_CAPACITY)) this.byId.delete(r.id);
    }
    const oldest = Math.floor(Date.now() / 1000) - CHART_SECONDS;
    for (const k of this.perSecond.keys()) if (k < oldest) this.perSecond.delete(k);
    this.version++;
    for (const l of this.listeners) l();
  }
}

const stores = new WeakMap<ConsoleClient, FeedStore>();

/** One store per client, created when the console starts so the feed has history when it is opened. */
export function feedStoreOf(client: ConsoleClient): FeedStore {
  let s = stores.get(client);
  if (!s) {
    s = new FeedStore(client);
    stores.set(client, s);
  }
  return s;
}
