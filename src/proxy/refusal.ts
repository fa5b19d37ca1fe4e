import { randomBytes } from 'node:crypto';
import { Backend } from '../protocol/codes.js';
import { errorResponse, parseErrorFields } from '../protocol/messages.js';

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
 * error does (an explicit block becomes failed, an implicit one is rolled back), so the client sees what PostgreSQL
 * itself would have sent. Synthesizing the ErrorResponse in the proxy instead would need a model of every pending
 * response and of the transaction state; the server already has both.
 * DO + RAISE runs nothing else; `USING MESSAGE` takes the text verbatim (no % formatting).
 */
export function refusalQuery(r: Refusal): Buffer {
  const tag = `$sluice_${randomBytes(6).toString('hex')}$`;
  const sql = `DO ${tag}BEGIN RAISE EXCEPTION USING ERRCODE = ${literal(r.code)}, MESSAGE = ${literal(r.message)}, HINT = ${literal(r.hint)}; END${tag}`;
  const body = Buffer.from(sql + '\0', 'utf8');
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = 0x51; // Query
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

/** A string literal under standard_conforming_strings=on (pinned): only the quote needs doubling. */
function literal(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/**
 * Tracks what each ReadyForQuery answers. Every Query/Sync forwarded expects one; a refusal that stands in for a
 * Parse (extended protocol) also produces one the client must not see, because the client's own Sync will be
 * answered later. If the server was already skipping to Sync after an earlier error in the same pipeline, it ignores
 * the refusal (as it would have ignored the refused Parse): then no error of ours arrives and nothing is dropped.
 */
export class ResponseTracker {
  private readonly owners: Array<'client' | 'swallow'> = [];
  private head = 0;
  /** Refusals on their way back, to recognise our own ErrorResponse. */
  private readonly pending: Refusal[] = [];
  private sawOwnError = false;

  expectClient(): void {
    this.owners.push('client');
  }

  /** A refusal was forwarded: `hidden` when its ReadyForQuery must not reach the client. */
  refusalSent(refusal: Refusal, hidden: boolean): void {
    this.pending.push(refusal);
    this.owners.push(hidden ? 'swallow' : 'client');
  }

  /**
   * For an ErrorResponse from the server: the frame to pass on. Our own refusal loses the PL/pgSQL context and
   * source-location fields (they describe the DO block, not the client's statement).
   */
  onError(frame: Buffer): Buffer {
    if (this.pending.length === 0) return frame;
    const f = parseErrorFields(frame);
    const i = this.pending.findIndex((r) => r.message === f.M && r.code === f.C);
    if (i < 0) return frame;
    const [mine] = this.pending.splice(i, 1);
    if (this.owners[this.head] === 'swallow') this.sawOwnError = true;
    return errorResponse({ severity: 'ERROR', code: mine!.code, message: mine!.message, hint: f.H, detail: f.D, position: mine!.position }, Backend.ErrorResponse);
  }

  /** For a ReadyForQuery from the server: false when it must be dropped. */
  onReady(): boolean {
    if (this.shift() === 'swallow') {
      if (this.sawOwnError) {
        this.sawOwnError = false;
        return false;
      }
      // The server skipped our refusal: this ReadyForQuery answers the next thing the client sent.
      this.pending.shift();
      this.shift();
    }
    return true;
  }

  private shift(): 'client' | 'swallow' | undefined {
    const o = this.owners[this.head];
    if (o === undefined) return undefined;
    this.head++;
    if (this.head > 1024) {
      this.owners.splice(0, this.head);
      this.head = 0;
    }
    return o;
  }
}
