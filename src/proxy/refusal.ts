import { randomBytes } from 'node:crypto';
import { Backend } from '../protocol/codes.js';
import { cstr, errorResponse, parseErrorFields, typed } from '../protocol/messages.js';

export interface Refusal {
  code: string;
  message: string;
  hint: string;
  /** Where in the statement the problem is (parser errors); RAISE cannot set it, so the tracker adds it back. */
  position?: number;
}

/**
 * Sluice refuses a statement by sending the server, in its place, a statement whose only effect is to raise the
 * refusal as an error. The server then answers in protocol order and does to the transaction exactly what an
 * error does (an explicit block becomes failed, an implicit one is rolled back, an already failed one answers 25P02,
 * a pipeline already skipping to Sync skips it too), so the client sees what PostgreSQL itself would have sent.
 * Synthesizing the ErrorResponse in the proxy instead would need a model of every pending response and of the
 * transaction state; the server already has both.
 * DO + RAISE runs nothing else; `USING MESSAGE` takes the text verbatim (no % formatting).
 */
function refusalSql(r: Refusal): string {
  const tag = `$sluice_${randomBytes(6).toString('hex')}$`;
  return `DO ${tag}BEGIN RAISE EXCEPTION USING ERRCODE = ${literal(r.code)}, MESSAGE = ${literal(r.message)}, HINT = ${literal(r.hint)}; END${tag}`;
}

/** In place of a refused simple Query (or FunctionCall): a Query raising the refusal. */
export function refusalQuery(r: Refusal): Buffer {
  return message(0x51, [cstr(refusalSql(r))]);
}

/**
 * In place of a refused Parse: Parse/Bind/Execute of the refusal on the unnamed statement, inside the client's
 * extended-protocol segment. The client's own Sync then gets the one ReadyForQuery it expects. Only the
 * ParseComplete and BindComplete these produce must be hidden (see ResponseTracker).
 */
export function refusalExtended(r: Refusal): Buffer {
  const none = Buffer.alloc(2); // zero parameter types / formats / values / result formats
  return Buffer.concat([
    message(0x50, [cstr(''), cstr(refusalSql(r)), none]), // Parse
    message(0x42, [cstr(''), cstr(''), none, none, none]), // Bind
    message(0x45, [cstr(''), Buffer.alloc(4)]), // Execute, no row limit
  ]);
}

function message(code: number, parts: Buffer[]): Buffer {
  return typed(code, Buffer.concat(parts));
}

/** A string literal under standard_conforming_strings=on (pinned): only the quote needs doubling. */
function literal(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

const PARSE_COMPLETE = 0x31; // '1'
const BIND_COMPLETE = 0x32; // '2'

interface PendingRefusal {
  refusal: Refusal;
  /** The ReadyForQuery (counted from the session start) that closes the cycle the refusal runs in. */
  cycle: number;
  /** Sent as Parse/Bind/Execute: its ParseComplete and BindComplete are not the client's. */
  extended: boolean;
}

/**
 * Follows the server's answers to refusals: recognises Sluice's own ErrorResponse (to drop the DO block's context
 * and source fields and restore the parser position), and hides the ParseComplete/BindComplete of a refusal that
 * stands in for a Parse. Those two arrive right before the refusal's error, so while such a refusal is pending,
 * ParseComplete/BindComplete frames are held until the next other frame says whose they were.
 * A refusal the server never raised (it was skipping to Sync, or the transaction had failed and it answered 25P02)
 * is forgotten when its cycle's ReadyForQuery arrives.
 */
export class ResponseTracker {
  private sent = 0;
  private answered = 0;
  private pending: PendingRefusal[] = [];
  private held: Buffer[] = [];

  /** True while server frames need looking at one by one. */
  get active(): boolean {
    return this.pending.length > 0 || this.held.length > 0;
  }

  /** A Query or Sync was forwarded: one ReadyForQuery will answer it. */
  expectClient(): void {
    this.sent++;
  }

  /** A refused simple Query (or FunctionCall) was replaced by refusalQuery(). */
  refusedQuery(r: Refusal): void {
    this.sent++;
    this.pending.push({ refusal: r, cycle: this.sent, extended: false });
  }

  /** A refused Parse was replaced by refusalExtended(); the client's next Sync closes its cycle. */
  refusedParse(r: Refusal): void {
    this.pending.push({ refusal: r, cycle: this.sent + 1, extended: true });
  }

  /** Request cycles (Query or Sync) decided but not yet answered by a ReadyForQuery. */
  get outstanding(): number {
    return this.sent - this.answered;
  }

  /** Fast path (nothing pending): counts a ReadyForQuery. */
  sawReady(): void {
    this.answered++;
  }

  /** Slow path: one server frame in, the frames to pass on now out (in order). */
  onFrame(f: Buffer): Buffer[] {
    const code = f[0];
    if ((code === PARSE_COMPLETE || code === BIND_COMPLETE) && this.pending.some((p) => p.extended)) {
      this.held.push(f);
      return [];
    }
    const out = this.held;
    this.held = [];
    if (code === Backend.ErrorResponse) {
      out.push(this.onError(f, out));
    } else {
      if (code === Backend.ReadyForQuery) {
        this.answered++;
        this.pending = this.pending.filter((p) => p.cycle > this.answered);
      }
      out.push(f);
    }
    return out;
  }

  private onError(frame: Buffer, held: Buffer[]): Buffer {
    const f = parseErrorFields(frame);
    const i = this.pending.findIndex((p) => p.refusal.message === f.M && p.refusal.code === f.C);
    if (i < 0) return frame;
    const [mine] = this.pending.splice(i, 1);
    // The refusal's own ParseComplete and BindComplete are the last two frames held.
    if (mine!.extended && held.at(-1)?.[0] === BIND_COMPLETE && held.at(-2)?.[0] === PARSE_COMPLETE) held.splice(-2, 2);
    const r = mine!.refusal;
    return errorResponse({ severity: 'ERROR', code: r.code, message: r.message, hint: f.H, detail: f.D, position: r.position }, Backend.ErrorResponse);
  }
}
