import { Backend, SqlState } from '../protocol/codes.js';
import { errorResponse, type PgError } from '../protocol/messages.js';

/** The row limits in force for a session (policy may change them while it runs), with the rule each comes from. */
export interface RowLimits {
  maxRowsPerStatement: number | null;
  maxRowsPerSession: number | null;
  from: { maxRowsPerStatement?: string; maxRowsPerSession?: string };
}

const DATA_ROW = 0x44; // D
const COPY_DATA = 0x64; // d
const COMMAND_COMPLETE = 0x43; // C
const EMPTY_QUERY = 0x49; // I
const COPY_OUT = 0x48; // H
const COPY_BOTH = 0x57; // W
const NOTIFICATION = 0x41; // A

/** What the limiter does with one server frame. */
export type RowVerdict =
  /** Passes unchanged (the common case). */
  | 'pass'
  /** Withheld: part of a result that was cut, or the server's answer to the statement Sluice ended. */
  | 'drop'
  /** The limit tripped on this frame: send `error` in its place and withhold the rest until ReadyForQuery. */
  | { error: Buffer; fields: PgError };

/**
 * Counts the rows a session's client receives (DataRows, and CopyData rows of a COPY TO STDOUT, which PostgreSQL
 * sends one per row) against the policy's per-statement and per-session limits. When one trips, the row that
 * crossed it is replaced by an ERROR 54000 and everything the server still sends for that request cycle is withheld
 * until its ReadyForQuery, which passes so the client stays in sync (its status byte is the server's truth).
 *
 * A statement ends at CommandComplete, EmptyQueryResponse or ErrorResponse. PortalSuspended does not end it: a portal
 * fetched in batches is one statement, so fetching 100 rows at a time does not escape the per-statement limit.
 */
export class RowLimiter {
  private statementRows = 0;
  private sessionRows = 0;
  private cut = false;
  private limits: RowLimits | null = null;

  constructor(private readonly current: () => RowLimits) {}

  /** True while the rest of a cut result is being withheld. */
  get cutting(): boolean {
    return this.cut;
  }

  /** Rows the client has received in this session. */
  get rowsSent(): number {
    return this.sessionRows;
  }

  onFrame(f: Buffer): RowVerdict {
    const code = f[0];
    if (this.cut) {
      if (code === Backend.ReadyForQuery) {
        this.cut = false;
        this.statementRows = 0;
        this.limits = null;
        return 'pass';
      }
      // Asynchronous messages are not part of the result: the client should still see them.
      return code === Backend.ParameterStatus || code === NOTIFICATION || code === Backend.NoticeResponse ? 'pass' : 'drop';
    }
    if (code === DATA_ROW || code === COPY_DATA) {
      // The limits are read when a statement's first row arrives: a policy applied meanwhile counts from then on.
      const limits = (this.limits ??= this.current());
      const perStatement = limits.maxRowsPerStatement;
      const perSession = limits.maxRowsPerSession;
      if (perStatement !== null && this.statementRows >= perStatement) return this.trip(perStatement, 'statement', limits.from.maxRowsPerStatement);
      if (perSession !== null && this.sessionRows >= perSession) return this.trip(perSession, 'session', limits.from.maxRowsPerSession);
      this.statementRows++;
      this.sessionRows++;
      return 'pass';
    }
    if (code === COMMAND_COMPLETE || code === EMPTY_QUERY || code === Backend.ErrorResponse || code === Backend.ReadyForQuery) {
      this.statementRows = 0;
      this.limits = null;
    } else if (code === COPY_OUT || code === COPY_BOTH) {
      // The header of a COPY TO STDOUT starts the statement's rows.
      this.statementRows = 0;
    }
    return 'pass';
  }

  /**
   * Another part of Sluice refuses the running result (masking: a derived value its rule denies, a row it cannot
   * rewrite): `fields` goes in place of the current frame and the rest of the cycle is withheld, as for a limit.
   */
  refuse(fields: PgError): RowVerdict {
    this.cut = true;
    return { error: errorResponse(fields), fields };
  }

  private trip(max: number, scope: 'statement' | 'session', rule: string | undefined): RowVerdict {
    this.cut = true;
    const by = rule ? ` of rule "${rule}"` : '';
    const fields: PgError = scope === 'statement'
      ? {
        severity: 'ERROR',
        code: SqlState.ProgramLimitExceeded,
        message: `Sluice stopped the result after ${max} rows: the statement returns more than maxRowsPerStatement (${max})${by} allows`,
        hint: 'Ask for fewer rows (a LIMIT or a narrower WHERE), or ask the operator to raise the limit. The rest of the result was not sent.',
      }
      : {
        severity: 'ERROR',
        code: SqlState.ProgramLimitExceeded,
        message: `Sluice stopped the result: this session has received maxRowsPerSession (${max}) rows${by}`,
        hint: 'The session has used its row budget; ask the operator to raise the limit. The rest of the result was not sent.',
      };
    return { error: errorResponse(fields), fields };
  }
}
