import type net from 'node:net';
import { Backend, SqlState } from '../protocol/codes.js';
import { Framer, writeFrames } from '../protocol/framer.js';
import { errorResponse, parseErrorFields, terminate, type PgError } from '../protocol/messages.js';
import type { ProxyContext } from './context.js';
import { ResponseTracker } from './refusal.js';
import { CompletionTracker } from './completions.js';
import { RowLimiter } from './row-limits.js';
import { StatementLoop, type Held, type PendingAnswer, type Resume } from './statement-loop.js';
import { approvalRequest, holdPolicy, KEEPALIVE_MS, RecentStatements, refusedRequest, resumeFor } from './hold.js';
import type { StatementGate } from './statement-gate.js';
import type { PinnedSettings } from './pinned-settings.js';
import { sendCancel, type UpstreamSession, type UpstreamTarget } from './upstream.js';
import { MaskResults } from './mask-results.js';

/** Client frames held until their audit records are committed; they leave in the order they came. */
interface InboundBatch {
  frames: Buffer[];
  ready: boolean;
  terminate: boolean;
  answers: PendingAnswer[];
  /** Ids of the batch's records, once committed. */
  ids: readonly number[];
}

const FLUSH = Buffer.from([0x48, 0, 0, 0, 4]);
const PARSE_COMPLETE = 0x31; // 1
const BIND_COMPLETE = 0x32; // 2
const CLOSE_COMPLETE = 0x33; // 3

/** Batches waiting for the audit store beyond which the client is not read (backpressure). */
const MAX_QUEUED_BATCHES = 64;
/** At most this long a new session's first statement waits for the target's catalog (then names stay unqualified). */
const NAMES_WAIT_MS = 2000;

export interface RelayOptions {
  sessionId: number;
  target: UpstreamTarget;
  early: Buffer[];
  cancelPid: number;
  pinned: PinnedSettings;
  gate: StatementGate;
  onClosed(): void;
}

/**
 * One relaying session: client frames are read whole and decided by the StatementLoop; allowed ones are forwarded
 * as the same bytes once the audit store has committed their records, refused ones are replaced by a refusal the
 * server raises. Server frames go back as the same bytes; only while a refusal's answer is in flight are they
 * filtered (ResponseTracker). Backpressure both ways: a slow reader pauses the other side.
 */
export class Relay {
  private readonly serverFramer: Framer;
  private readonly queue: InboundBatch[] = [];
  private readonly tracker = new ResponseTracker();
  private readonly loop: StatementLoop;
  private readonly completions: CompletionTracker;
  private closed = false;
  private clientPausedForUpstream = false;
  private serverPausedForClient = false;
  /** Message of a FATAL the server sent (passed to the client already); used as the end reason. */
  private serverFatal: string | null = null;
  private terminating = false;
  private readonly rows: RowLimiter;
  /** A cancel for a cut result is on its way: nothing more is forwarded until the server has taken it. */
  private holdForCancel = false;
  /** A statement waiting for an operator, with everything the client sent after it. */
  private held: { h: Held; rest: Buffer[]; id: string | null; keepAlive: NodeJS.Timeout | null; cancelled: boolean } | null = null;
  private readonly recent = new RecentStatements();
  /** Results of a session masking applies to (null: none, and server frames pass untouched). */
  private readonly masks: MaskResults | null = null;
  /** Server frames held while a mask plan waits for a catalog reload (kept in order). */
  private maskWait: Buffer[] | null = null;
  /** Masking could not be prepared: the session ends with this at the client's first message. */
  private refusedAtStart: Omit<PgError, 'severity'> | null = null;

  constructor(
    private readonly client: net.Socket,
    private readonly clientFramer: Framer,
    private readonly upstream: UpstreamSession,
    private readonly ctx: ProxyContext,
    private readonly opts: RelayOptions,
  ) {
    this.serverFramer = upstream.framer;
    this.loop = new StatementLoop(opts.gate, this.tracker, opts.sessionId, holdPolicy(ctx.approvals, opts.sessionId));
    ctx.cancels.setLocal(opts.cancelPid, () => this.cancelHeld());
    this.completions = new CompletionTracker((id, result) => ctx.audit.complete(id, result));
    this.rows = new RowLimiter(() => opts.gate.rowLimits());
    const server = upstream.socket;
    client.on('data', this.onClientData);
    client.on('close', () => this.end('client disconnected'));
    client.on('error', () => { /* 'close' follows */ });
    client.on('drain', this.onClientDrain);
    server.on('data', this.onServerData);
    server.on('close', () => this.onServerGone());
    server.on('error', () => { /* 'close' follows */ });
    server.on('drain', this.onServerDrain);
    const masking = opts.gate.masking;
    if (masking?.active) {
      masking.engaged = true;
      this.masks = new MaskResults(masking);
      this.masks.onMasked = (n) => this.completions.masked(n);
      this.loop.masks = this.masks;
    }
    if (upstream.leftover.length > 0) this.fromServer(upstream.leftover);
    server.resume();
    const begin = () => {
      if (opts.early.length > 0) this.fromClient(opts.early);
      client.resume();
    };
    // Started only now that the session holds its upstream connection: the catalog load opens a side connection.
    const names = opts.gate.start(Math.min(ctx.limits.connectTimeoutMs, NAMES_WAIT_MS));
    if (!masking?.active) {
      if (names) void names.then(begin);
      else begin();
      return;
    }
    // No statement is decided before the catalog is loaded: a session masking applies to is refused rather than
    // unmasked. The refusal answers the client's first message, so drivers report it as that statement's error.
    masking.prepare().then(begin, (err: Error) => {
      this.refusedAtStart = {
        code: SqlState.CannotConnectNow,
        message: `Sluice cannot load the column catalog of target "${opts.target.name}", which the masking rules of this session need: ${err.message}`,
        hint: 'The session was refused so that no column is returned unmasked; retry later, or ask the operator to check the target connection and the masking key.',
      };
      begin();
    });
  }

  shutdown(message: string): void {
    this.fatalToClient({ code: SqlState.AdminShutdown, message, hint: 'Reconnect when Sluice is back.' }, `broker shutdown: ${message}`);
  }

  /** Ends the session from outside with a FATAL error to the client (e.g. its token expired); `reason` is recorded. */
  endWithError(e: Omit<PgError, 'severity'>, reason: string): void {
    this.fatalToClient(e, reason);
  }

  private readonly onClientData = (chunk: Buffer) => {
    const frames: Buffer[] = [];
    const err = this.clientFramer.push(chunk, (f) => frames.push(f));
    if (frames.length > 0) this.fromClient(frames);
    if (err) {
      this.fatalToClient({ code: SqlState.ProtocolViolation, message: err.kind === 'too_large' ? `message of ${err.declared} bytes exceeds Sluice's limit of ${err.limit}` : `invalid message length ${err.declared}`, hint: err.kind === 'too_large' ? 'Send smaller statements or raise limits.maxMessageBytes.' : undefined }, `protocol violation from client (${err.kind})`);
    }
  };

  private fromClient(frames: Buffer[], resume?: Resume, receivedAt?: number): void {
    if (this.closed) return;
    if (this.refusedAtStart) return this.fatalToClient(this.refusedAtStart, `refused: ${this.refusedAtStart.message}`);
    // While a statement waits for an operator the client is paused; what it had already sent waits behind it.
    if (this.held && !resume) return void this.held.rest.push(...frames);
    const r = this.loop.onClientFrames(frames, Date.now(), resume, receivedAt);
    if (r.kind === 'fatal') return this.fatalToClient(r.error, r.reason);
    const records = r.records;
    for (const rec of records) this.recent.push(rec.text);
    const batch: InboundBatch = { frames: r.out, ready: records.length === 0, terminate: r.terminate, answers: r.answers, ids: [] };
    this.queue.push(batch);
    if (!batch.ready) {
      this.ctx.audit.record(records, (err, ids) => {
        if (err) {
          this.ctx.log('error', `audit write failed, session ${this.opts.sessionId}: ${err.message}`);
          return this.fatalToClient({ code: SqlState.IoError, message: 'Sluice could not record the statement in its audit store; it was not executed', hint: 'Ask the operator to check the Sluice data directory (disk space, permissions).' }, `audit store write failed: ${err.message}`);
        }
        batch.ready = true;
        batch.ids = ids ?? [];
        this.drainQueue();
      });
    } else {
      this.drainQueue();
    }
    if (r.held) this.hold(r.held);
    else if (this.queue.length > MAX_QUEUED_BATCHES) this.pauseClient();
  }

  /** Holds a `review` statement (and what follows it) until an operator decides, the deadline passes or it is voided. */
  private hold(h: Held): void {
    const approvals = this.ctx.approvals!;
    this.client.pause();
    const held = { h, rest: h.frames, id: null as string | null, keepAlive: null as NodeJS.Timeout | null, cancelled: false };
    this.held = held;
    let req;
    try {
      req = approvals.request(approvalRequest(h, this.opts.gate, this.opts.sessionId, this.opts.target.name, this.recent));
    } catch (err) {
      return this.release(held, refusedRequest(err));
    }
    held.id = req.id;
    held.keepAlive = setInterval(() => this.keepAlive(), KEEPALIVE_MS);
    void req.decision.then((d) => {
      if (this.closed || this.held !== held) return;
      const resume = resumeFor(d, approvals, held.cancelled);
      if (resume) this.release(held, resume);
    });
  }

  private release(held: NonNullable<Relay['held']>, resume: Resume): void {
    if (held.keepAlive) clearInterval(held.keepAlive);
    this.held = null;
    this.fromClient(held.rest, resume, held.h.receivedAt);
    if (!this.held && !this.closed && this.queue.length <= MAX_QUEUED_BATCHES && !this.clientPausedForUpstream) this.client.resume();
  }

  /** A CancelRequest for this session: a held statement is voided and refused (57014); true when handled here. */
  private cancelHeld(): boolean {
    const held = this.held;
    if (!held || held.id === null) return false;
    held.cancelled = true;
    this.ctx.approvals?.void(held.id, 'the client cancelled the statement');
    return true;
  }

  /**
   * The server ends sessions idle in a transaction (idle_in_transaction_session_timeout) or idle at all
   * (idle_session_timeout); a statement waiting for an operator must not cost the client its session. A Flush
   * changes no state and has no answer, and any message the backend reads disarms those timers until its next
   * ReadyForQuery (postgres.c arms them only when it sends one), so it is safe anywhere, even inside a request cycle.
   */
  private keepAlive(): void {
    if (this.closed || this.queue.length > 0) return;
    this.upstream.socket.write(FLUSH);
  }

  private drainQueue(): void {
    const server = this.upstream.socket;
    while (this.queue.length > 0 && this.queue[0]!.ready && !this.closed && !this.holdForCancel) {
      const b = this.queue.shift()!;
      const now = performance.now();
      for (const a of b.answers) {
        this.completions.expect(a.kind === 'cycle' ? a : { kind: a.kind, id: b.ids[a.record]! }, now);
      }
      const ok = writeFrames(server, b.frames);
      if (b.terminate) {
        this.terminating = true;
        server.end();
        return this.end('client terminated');
      }
      if (!ok) this.pauseClient(true);
    }
    if (this.queue.length <= MAX_QUEUED_BATCHES && !this.clientPausedForUpstream && !this.held) this.client.resume();
  }

  private pauseClient(forUpstream = false): void {
    if (forUpstream) this.clientPausedForUpstream = true;
    this.client.pause();
  }

  private readonly onServerDrain = () => {
    this.clientPausedForUpstream = false;
    if (this.queue.length <= MAX_QUEUED_BATCHES && !this.held) this.client.resume();
  };

  private readonly onServerData = (chunk: Buffer) => {
    const frames: Buffer[] = [];
    const err = this.serverFramer.push(chunk, (f) => frames.push(f));
    if (frames.length > 0) this.fromServer(frames);
    if (err) {
      this.fatalToClient({ code: SqlState.ProtocolViolation, message: `the server sent a message of ${err.declared} bytes, over Sluice's limit of ${err.limit}`, hint: 'Fetch less per row, or raise limits.maxServerMessageBytes.' }, `server message over limit (${err.declared})`);
    }
  };

  private fromServer(frames: Buffer[]): void {
    if (this.closed) return;
    if (this.maskWait) return void this.maskWait.push(...frames);
    const masks = this.masks;
    // Frames pass as the same bytes unless a refusal's answer is in flight (rare): then the tracker filters them;
    // or a row limit cut a result: then the rest of its cycle is withheld (`visible` holds what the client gets).
    const filtered = this.tracker.active;
    let visible: Buffer[] | null = masks ? [] : null;
    for (let i = 0; i < frames.length; i++) {
      let f = frames[i]!;
      if (masks !== null) {
        const m = masks.onFrame(f);
        if (m.kind === 'wait') {
          this.waitForCatalog(m.ready, frames.slice(i));
          break;
        }
        if (m.kind === 'drop') continue;
        if (m.kind === 'refuse') {
          // While a cut result is withheld, a later refusal in the same cycle has nothing left to replace.
          const v = this.rows.cutting ? 'drop' : this.rows.refuse(m.error);
          if (v !== 'pass' && v !== 'drop') {
            visible!.push(v.error);
            this.completions.cut(v.fields);
            this.cancelCutResult();
          }
          continue;
        }
        f = m.frame;
      }
      const code = f[0];
      if (code !== Backend.ErrorResponse) this.completions.onFrame(f);
      if (code === PARSE_COMPLETE || code === BIND_COMPLETE || code === CLOSE_COMPLETE) {
        this.loop.onServerConfirmed();
      } else if (code === Backend.ReadyForQuery) {
        this.loop.onServerReady();
        this.opts.gate.onReady(f[5]!, this.loop.settled);
        if (!filtered) this.tracker.sawReady();
      } else if (code === Backend.ErrorResponse) {
        this.opts.gate.onServerError();
        const fields = parseErrorFields(f);
        this.completions.onFrame(f, fields); // decoded once for both
        if (fields.V === 'FATAL' || fields.V === 'PANIC') this.serverFatal = `server: ${fields.C ?? ''} ${fields.M ?? ''}`.trim();
      } else if (code === Backend.NotificationResponse && f.length >= 9) {
        // The sender's pid as its client knows it (Sluice's BackendKeyData), as a direct connection would show it.
        const pid = this.ctx.cancels.clientPid(this.opts.target, f.readInt32BE(5));
        if (pid !== null) {
          visible ??= frames.slice(0, i);
          f = Buffer.from(f);
          f.writeInt32BE(pid, 5);
        }
      } else if (code === Backend.ParameterStatus) {
        const why = this.opts.pinned.check(f);
        // The change already happened upstream; nothing after it may be read differently by Sluice and the server.
        if (why) return this.fatalToClient({ code: SqlState.FeatureNotSupported, message: why, hint: 'Keep client_encoding UTF8 and standard_conforming_strings on through Sluice.' }, `refused: ${why}`);
      }
      const v = this.rows.onFrame(f);
      if (v === 'pass') {
        visible?.push(f);
        continue;
      }
      visible ??= frames.slice(0, i);
      if (v !== 'drop') {
        visible.push(v.error);
        this.completions.cut(v.fields);
        this.cancelCutResult();
      }
    }
    const shown = visible ?? frames;
    const each = filtered ? shown.flatMap((f) => this.tracker.onFrame(f)) : shown;
    // Rewritten rows are separate buffers: one write for the chunk, not one per row.
    const out = masks !== null && each.length > 1 ? [Buffer.concat(each)] : each;
    if (out.length > 0 && !writeFrames(this.client, out)) {
      this.serverPausedForClient = true;
      this.upstream.socket.pause();
    }
  }

  /** A RowDescription names a table the catalog snapshot does not know: reload it before planning (frames wait). */
  private waitForCatalog(ready: Promise<unknown>, rest: Buffer[]): void {
    this.maskWait = rest;
    this.upstream.socket.pause();
    void ready.catch(() => undefined).then(() => {
      const held = this.maskWait ?? [];
      this.maskWait = null;
      if (!this.serverPausedForClient) this.upstream.socket.resume();
      this.fromServer(held);
    });
  }

  /**
   * After a row limit cut a result, asks the server to stop producing it. A cancel hits whatever the backend runs
   * when it arrives, so it is sent only when the cut cycle is the only one the server has been given, and nothing more
   * is forwarded until the server has taken it (closed the cancel connection): it cannot hit a later statement.
   * Otherwise the rest of the result is simply read and withheld.
   */
  private cancelCutResult(): void {
    if (this.tracker.outstanding !== 1 || this.holdForCancel) return;
    this.holdForCancel = true;
    sendCancel(this.opts.target, this.upstream.pid, this.upstream.secret, this.ctx.limits.connectTimeoutMs)
      .catch((err: Error) => this.ctx.log('warn', `cancel of a cut result failed, session ${this.opts.sessionId}: ${err.message}`))
      .finally(() => {
        this.holdForCancel = false;
        this.drainQueue();
      });
  }

  private readonly onClientDrain = () => {
    if (this.serverPausedForClient) {
      this.serverPausedForClient = false;
      this.upstream.socket.resume();
    }
  };

  private onServerGone(): void {
    if (this.closed || this.terminating) return;
    if (this.serverFatal) {
      this.client.end();
      return this.end(this.serverFatal);
    }
    this.fatalToClient({ code: SqlState.ConnectionFailure, message: `Sluice lost the connection to target "${this.opts.target.name}"`, hint: 'The database closed the connection or is down; reconnect to start a new session.' }, 'upstream connection lost');
  }

  private fatalToClient(e: Omit<PgError, 'severity'>, reason: string): void {
    if (this.closed) return;
    if (this.client.writable) this.client.end(errorResponse({ severity: 'FATAL', ...e }));
    this.end(reason);
  }

  private end(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    if (this.held) {
      if (this.held.keepAlive) clearInterval(this.held.keepAlive);
      if (this.held.id !== null) this.ctx.approvals?.void(this.held.id, reason);
      this.held = null;
    }
    const server = this.upstream.socket;
    if (!server.destroyed && !this.terminating) {
      server.end(terminate());
    }
    setTimeout(() => server.destroy(), 1000).unref();
    if (!this.client.writableEnded) this.client.end();
    // A second to take what was written, then gone: a client paused for a server that will never drain again
    // would otherwise never be read to its EOF, and its socket (a connection slot, and the broker's close) stays.
    setTimeout(() => this.client.destroy(), 1000).unref();
    this.ctx.cancels.unregister(this.opts.cancelPid);
    this.opts.gate.close();
    try {
      this.ctx.audit.endSession(this.opts.sessionId, reason);
    } catch (err) {
      this.ctx.log('error', `could not record end of session ${this.opts.sessionId}: ${(err as Error).message}`);
    }
    this.opts.onClosed();
  }
}

