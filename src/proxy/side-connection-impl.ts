/**
 * The SideConnection implementation: Sluice's own session to a target (catalog loads for masking, EXPLAIN for
 * approvals). Connecting and authenticating (SCRAM, md5, TLS) is `connectUpstream`'s; replies are framed by our
 * Framer (which enforces the size limit pg-protocol does not check) and decoded by pg-protocol's Parser.
 * Statements are pipelined: each ends with ReadyForQuery, so replies are matched to requests in order.
 */
import { serialize } from 'pg-protocol';
import type { BackendMessage, CommandCompleteMessage, DataRowMessage, DatabaseError, RowDescriptionMessage } from 'pg-protocol/dist/messages.js';
import { Parser } from 'pg-protocol/dist/parser.js';
import { terminate } from '../protocol/messages.js';
import type { SideConnection, SideResult } from './side-connection.js';
import { connectUpstream, type UpstreamTarget } from './upstream.js';

/** A result field with the provenance RowDescription gave it (0/0 when it has none). */
export interface SideField {
  name: string;
  typeOid: number;
  tableOid: number;
  attnum: number;
}

export interface SideResultWithProvenance extends SideResult {
  fields: SideField[];
}

/** The interface plus what this implementation also offers (the fields carry provenance). */
export interface OpenSideConnection extends SideConnection {
  query(sql: string, params?: (string | null)[]): Promise<SideResultWithProvenance>;
  /** Parse + Describe of a statement without running it: its result fields (provenance included), [] for none. */
  describe(sql: string): Promise<SideField[]>;
  /** Resolves when the connection has closed (server gone, close(), or a protocol failure). */
  readonly closed: Promise<void>;
}

export interface SideConnectionOptions {
  timeoutMs: number;
  maxServerMessageBytes: number;
  /** Per statement; the connection is closed when one takes longer (its state is then unknown). Default 30 s. */
  queryTimeoutMs?: number;
  /** Run in read-only transactions (default true): a side connection only ever reads. */
  readOnly?: boolean;
}

/** A statement the server refused: its SQLSTATE and message, as the server sent them. */
export class SideQueryError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly detail?: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

interface Pending {
  result: SideResultWithProvenance;
  describeOnly: boolean;
  error: SideQueryError | null;
  resolve(r: SideResultWithProvenance): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

export async function openSideConnection(
  target: UpstreamTarget,
  password: string | undefined,
  opts: SideConnectionOptions,
): Promise<OpenSideConnection> {
  const options = opts.readOnly === false ? '' : '-c default_transaction_read_only=on';
  const session = await connectUpstream(target, password, { application_name: 'sluice-side', ...(options ? { options } : {}) }, opts);
  const { socket, framer } = session;
  const parser = new Parser();
  const pending: Pending[] = [];
  let failure: Error | null = null;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  const queryTimeout = opts.queryTimeoutMs ?? 30_000;

  const shutdown = (err: Error): void => {
    if (failure) return;
    failure = err;
    for (const p of pending.splice(0)) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    if (!socket.destroyed) socket.end(terminate());
    socket.destroy();
    resolveClosed();
  };

  const onMessage = (msg: BackendMessage): void => {
    const p = pending[0];
    switch (msg.name) {
      case 'rowDescription': {
        if (!p) return;
        const rd = msg as RowDescriptionMessage;
        // A simple Query with several statements: the last result set wins.
        p.result.fields = rd.fields.map((f) => ({ name: f.name, typeOid: f.dataTypeID, tableOid: f.tableID, attnum: f.columnID }));
        p.result.rows = [];
        return;
      }
      case 'dataRow':
        p?.result.rows.push((msg as DataRowMessage).fields as (string | null)[]);
        return;
      case 'commandComplete':
        if (p) p.result.command = (msg as CommandCompleteMessage).text;
        return;
      case 'error': {
        const e = msg as DatabaseError;
        if (p && !p.error) p.error = new SideQueryError(e.message, e.code ?? 'XX000', e.detail, e.hint);
        return;
      }
      case 'readyForQuery': {
        const done = pending.shift();
        if (!done) return shutdown(new Error('side connection: ReadyForQuery without a statement'));
        clearTimeout(done.timer);
        if (done.error) done.reject(done.error);
        else done.resolve(done.result);
        return;
      }
      default:
        // ParseComplete, BindComplete, NoData, ParameterDescription, notices, ParameterStatus: nothing to keep.
        return;
    }
  };

  const onFrame = (frame: Buffer): void => {
    try {
      parser.parse(frame, onMessage);
    } catch (e) {
      shutdown(new Error(`side connection: undecodable server message: ${(e as Error).message}`));
    }
  };
  for (const f of session.leftover) onFrame(f);
  socket.on('data', (chunk: Buffer) => {
    const err = framer.push(chunk, onFrame);
    if (err) shutdown(new Error(`side connection: server message breaks the frame limits (${err.kind}, length ${err.declared})`));
  });
  socket.on('error', (e) => shutdown(new Error(`side connection: ${e.message}`)));
  socket.on('close', () => shutdown(new Error('side connection closed')));
  socket.resume();

  const send = (sql: string, params: (string | null)[] | undefined, describeOnly: boolean): Promise<SideResultWithProvenance> => {
    if (failure) return Promise.reject(failure);
    return new Promise((resolve, reject) => {
      const p: Pending = {
        result: { fields: [], rows: [], command: '' },
        describeOnly,
        error: null,
        resolve,
        reject,
        timer: setTimeout(() => shutdown(new Error(`side connection: statement did not finish within ${queryTimeout} ms`)), queryTimeout),
      };
      pending.push(p);
      if (describeOnly) {
        socket.write(Buffer.concat([serialize.parse({ text: sql }), serialize.describe({ type: 'S' }), serialize.sync()]));
      } else if (params === undefined) {
        socket.write(serialize.query(sql));
      } else {
        socket.write(
          Buffer.concat([
            serialize.parse({ text: sql }),
            serialize.bind({ values: params }),
            serialize.describe({ type: 'P' }),
            serialize.execute({}),
            serialize.sync(),
          ]),
        );
      }
    });
  };

  return {
    query: (sql, params) => send(sql, params, false),
    describe: async (sql) => (await send(sql, undefined, true)).fields,
    close: () => shutdown(new Error('side connection closed')),
    closed,
  };
}
