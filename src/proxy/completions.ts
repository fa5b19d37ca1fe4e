import type { StatementResult } from '../audit/audit-log.js';
import { Backend } from '../protocol/codes.js';
import { parseErrorFields } from '../protocol/messages.js';

/** What the server's answers are matched against, in the order the client's messages were forwarded. */
export type Expectation =
  | { kind: 'query' | 'execute'; id: number }
  /** A Sync, or a refused Query/FunctionCall: answered by one ReadyForQuery, nothing to record. */
  | { kind: 'cycle' };

interface Running {
  kind: 'query' | 'execute';
  id: number;
  started: number;
  dataRows: number;
  tagRows: number;
  bytes: number;
  error: { code: string; message: string } | null;
  masked: number;
  /** Rows the client received before Sluice cut the result (null: not cut). */
  seen: number | null;
  /** CopyData messages of a COPY TO STDOUT (one per row). */
  copyRows: number;
}

const COMMAND_COMPLETE = 0x43; // C
const DATA_ROW = 0x44; // D
const COPY_DATA = 0x64; // d
const EMPTY_QUERY = 0x49; // I
const PORTAL_SUSPENDED = 0x73; // s

/**
 * Follows the server's answers to forwarded statements to record how each ended: duration, rows (returned, or
 * affected from the command tag), bytes of result data, error. Answers come in the order the messages were sent
 * (https://www.postgresql.org/docs/current/protocol-flow.html), so a FIFO of expectations is enough: an Execute
 * ends at CommandComplete / EmptyQueryResponse / PortalSuspended / ErrorResponse, a simple Query (several
 * statements perhaps) at its ReadyForQuery. Executes still pending at a ReadyForQuery were skipped by the server
 * after an earlier error in the pipeline.
 */
export class CompletionTracker {
  private readonly queue: (Running | { kind: 'cycle' })[] = [];
  private head = 0;

  constructor(private readonly complete: (id: number, result: StatementResult) => void) {}

  expect(e: Expectation, now: number): void {
    this.queue.push(e.kind === 'cycle' ? e : { kind: e.kind, id: e.id, started: now, dataRows: 0, tagRows: 0, bytes: 0, error: null, masked: 0, seen: null, copyRows: 0 });
  }

  /** Called for every server frame, in order; `errorFields` when the caller already decoded an ErrorResponse. */
  onFrame(f: Buffer, errorFields?: Record<string, string>): void {
    const e = this.queue[this.head];
    if (!e) return;
    switch (f[0]) {
      case DATA_ROW:
        if (e.kind !== 'cycle') { e.dataRows++; e.bytes += f.length; }
        return;
      case COPY_DATA:
        if (e.kind !== 'cycle') { e.copyRows++; e.bytes += f.length; }
        return;
      case COMMAND_COMPLETE:
        if (e.kind === 'cycle') return;
        e.tagRows += tagRows(f);
        if (e.kind === 'execute') this.finish();
        return;
      case EMPTY_QUERY:
      case PORTAL_SUSPENDED:
        if (e.kind === 'execute') this.finish();
        return;
      case Backend.ErrorResponse:
        if (e.kind === 'cycle') return;
        if (!e.error) {
          const fields = errorFields ?? parseErrorFields(f);
          e.error = { code: fields.C ?? '', message: fields.M ?? '' };
        }
        if (e.kind === 'execute') this.finish();
        return;
      case Backend.ReadyForQuery:
        for (let x = this.queue[this.head]; x; x = this.queue[this.head]) {
          if (x.kind === 'execute') {
            x.error ??= { code: '', message: 'not executed: the server skipped it after an earlier error in the pipeline' };
            this.finish();
            continue;
          }
          if (x.kind === 'query') this.finish();
          else this.shift();
          return;
        }
        return;
      default:
        return;
    }
  }

  /** The running statement's result has `fields` masked columns (several result sets: the most). */
  masked(fields: number): void {
    const e = this.queue[this.head];
    if (e && e.kind !== 'cycle') e.masked = Math.max(e.masked, fields);
  }

  /** Sluice cut the running statement's result (a row limit): its record says so, whatever the server answers. */
  cut(error: { code: string; message: string }): void {
    const e = this.queue[this.head];
    if (e && e.kind !== 'cycle') {
      e.error = { code: error.code, message: error.message };
      // The row that crossed the limit was counted already and replaced by the error: the client saw the ones before.
      e.seen ??= Math.max(0, (e.dataRows || e.copyRows) - 1);
    }
  }

  private finish(): void {
    const e = this.shift() as Running;
    const now = performance.now();
    this.complete(e.id, {
      completedAt: Date.now(),
      durationMs: Math.round((now - e.started) * 1000) / 1000,
      // Rows the client saw: returned rows (up to a cut), else the command tag's count (affected rows).
      rows: e.seen ?? (e.dataRows > 0 ? e.dataRows : e.tagRows),
      bytes: e.bytes,
      errorCode: e.error?.code ?? null,
      errorMessage: e.error?.message ?? null,
      maskedFields: e.masked > 0 ? e.masked : null,
    });
  }

  private shift(): Running | { kind: 'cycle' } | undefined {
    const e = this.queue[this.head++];
    if (this.head > 1024) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    return e;
  }
}

/** Rows affected from a CommandComplete tag ("INSERT 0 5", "UPDATE 3", "SELECT 7"); 0 when it has no count. */
function tagRows(f: Buffer): number {
  let n = 0;
  let scale = 1;
  // The count is the last word: read digits backwards from before the terminating NUL.
  for (let i = f.length - 2; i >= 5; i--) {
    const c = f[i]!;
    if (c < 0x30 || c > 0x39) return c === 0x20 ? n : 0;
    n += (c - 0x30) * scale;
    scale *= 10;
  }
  return 0;
}
