import net from 'node:net';
import tls from 'node:tls';
import { AuthCode, Backend, Frontend, SqlState } from '../protocol/codes.js';
import { Framer, type FrameError } from '../protocol/framer.js';
import {
  authRequest, backendKeyData, errorResponse, negotiateProtocolVersion, parseStartupPacket, readCString,
  type PgError,
} from '../protocol/messages.js';
import type { ProxyContext } from './context.js';
import { PinnedSettings } from './pinned-settings.js';
import { Relay } from './relay.js';
import type { StatementGate } from './statement-gate.js';
import { parseTimeoutMs } from '../policy/evaluate.js';
import { vetStartupParams } from './startup-params.js';
import { connectUpstream, sendCancel, UpstreamError, type UpstreamTarget } from './upstream.js';

/** One state at a time; every transition goes through `to()`. */
export const SessionState = {
  AwaitingStartup: 'AwaitingStartup',
  TlsHandshake: 'TlsHandshake',
  AwaitingPassword: 'AwaitingPassword',
  Authenticating: 'Authenticating',
  ConnectingUpstream: 'ConnectingUpstream',
  Relaying: 'Relaying',
  Closed: 'Closed',
} as const;
export type SessionState = (typeof SessionState)[keyof typeof SessionState];

const ALLOWED: Record<SessionState, readonly SessionState[]> = {
  AwaitingStartup: ['TlsHandshake', 'AwaitingPassword', 'Closed'],
  TlsHandshake: ['AwaitingStartup', 'Closed'],
  AwaitingPassword: ['Authenticating', 'Closed'],
  Authenticating: ['ConnectingUpstream', 'Closed'],
  ConnectingUpstream: ['Relaying', 'Closed'],
  Relaying: ['Closed'],
  Closed: [],
};

/**
 * A client connection from accept to the start of relaying: SSLRequest/GSSENCRequest/CancelRequest, the
 * StartupMessage, the agent key or OIDC token as a cleartext password, and the upstream connection with the target's own
 * credential. The Relay takes over after that.
 */
export class ClientSession {
  private state: SessionState = SessionState.AwaitingStartup;
  private socket: net.Socket;
  private framer: Framer;
  private readonly authTimer: NodeJS.Timeout;
  private sawSslRequest = false;
  /** Set when bytes follow an SSLRequest in the same read, i.e. before the TLS handshake could start. */
  private plaintextAfterSsl = false;
  private user = '';
  private database = '';
  private upstreamParams: Record<string, string> = {};
  private applicationName: string | null = null;
  /** Frames the client sent after its password, before relaying began (kept in order). */
  private early: Buffer[] = [];
  private relay: Relay | null = null;
  private upstreamKey: { target: UpstreamTarget; pid: number; secret: number } | null = null;
  private counted = false;
  /** Ends the session when the client's token expires (OIDC); cleared when the session ends. */
  private expiryTimer: NodeJS.Timeout | null = null;
  /** End reason for a session that ended before relaying began (the token expired while connecting). */
  private endReason: string | null = null;

  constructor(socket: net.Socket, private readonly ctx: ProxyContext) {
    this.socket = socket;
    this.framer = new Framer(ctx.limits.maxMessageBytes, 'startup');
    socket.setNoDelay(true);
    this.authTimer = setTimeout(() => this.fatal({ code: SqlState.ProtocolViolation, message: 'authentication timed out', hint: `Finish the startup and password exchange within ${ctx.limits.authTimeoutMs} ms.` }), ctx.limits.authTimeoutMs);
    this.attach(socket);
  }

  get currentState(): SessionState {
    return this.state;
  }

  /** Ends the session from outside (broker shutdown). */
  shutdown(message: string): void {
    if (this.relay) this.relay.shutdown(message);
    else this.fatal({ code: SqlState.AdminShutdown, message });
  }

  private to(next: SessionState): void {
    if (!ALLOWED[this.state].includes(next)) throw new Error(`illegal session transition ${this.state} -> ${next}`);
    this.state = next;
  }

  private readonly onData = (chunk: Buffer) => {
    const err = this.framer.push(chunk, (f) => this.onFrame(f));
    if (err) this.onFrameError(err, chunk);
  };
  private readonly onClose = () => this.close();
  private readonly onError = () => { /* 'close' follows */ };

  private attach(s: net.Socket): void {
    s.on('data', this.onData);
    s.on('close', this.onClose);
    s.on('error', this.onError);
  }

  private detach(s: net.Socket): void {
    s.off('data', this.onData);
    s.off('close', this.onClose);
    s.off('error', this.onError);
  }

  private onFrameError(err: FrameError, chunk: Buffer): void {
    if (this.state !== SessionState.AwaitingStartup) {
      this.fatal({ code: SqlState.ProtocolViolation, message: `invalid message length ${err.declared} (limit ${err.limit})` });
      return;
    }
    const head = chunk.subarray(0, 8).toString('latin1');
    let message = `invalid startup packet length ${err.declared}`;
    if (/^(GET|POST|PUT|HEAD|DELETE|OPTIONS|PATCH|CONNECT) /.test(head)) message = 'this is a PostgreSQL port (Sluice), not an HTTP server';
    else if (chunk[0] === 0x16 && chunk[1] === 0x03) message = 'TLS handshake without SSLRequest is not supported';
    this.fatal({ code: SqlState.ProtocolViolation, message, hint: 'Connect with a PostgreSQL client (psql, libpq, any driver).' });
  }

  private onFrame(frame: Buffer): void {
    switch (this.state) {
      case SessionState.AwaitingStartup: return this.onStartupPacket(frame);
      case SessionState.AwaitingPassword: return this.onPassword(frame);
      case SessionState.Authenticating:
      case SessionState.ConnectingUpstream:
        this.early.push(Buffer.from(frame)); // copied: the chunk it sits in is not kept
        return;
      case SessionState.TlsHandshake:
        this.plaintextAfterSsl = true;
        return;
      case SessionState.Relaying:
      case SessionState.Closed:
        return;
    }
  }

  private onStartupPacket(frame: Buffer): void {
    const p = parseStartupPacket(frame);
    switch (p.kind) {
      case 'invalid':
        return this.fatal({ code: SqlState.ProtocolViolation, message: p.reason });
      case 'gssenc':
        this.socket.write('N');
        return;
      case 'ssl':
        return this.startTls();
      case 'cancel':
        return this.forwardCancel(p.pid, p.secret);
      case 'startup':
        return this.onStartupMessage(p.minor, p.params);
    }
  }

  private startTls(): void {
    if (this.sawSslRequest) return this.fatal({ code: SqlState.ProtocolViolation, message: 'SSLRequest sent twice' });
    this.sawSslRequest = true;
    if (!this.ctx.tls) { this.socket.write('N'); return; }
    this.to(SessionState.TlsHandshake);
    // The next frame callback returns here before the rest of the chunk is read; check the rest after a tick.
    setImmediate(() => {
      if (this.state !== SessionState.TlsHandshake) return;
      // Bytes after SSLRequest and before the handshake are plaintext an attacker could have injected
      // (CVE-2021-23214): refuse them rather than read them as if they came through TLS.
      if (this.plaintextAfterSsl || this.framer.buffered > 0 || this.socket.readableLength > 0) {
        return this.fatal({ code: SqlState.ProtocolViolation, message: 'received unencrypted data after SSL request', hint: 'This can be a sign of a man-in-the-middle attack.' });
      }
      const raw = this.socket;
      this.detach(raw);
      raw.pause();
      raw.write('S');
      const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: this.ctx.tls });
      secure.once('secure', () => {
        if (this.state !== SessionState.TlsHandshake) return;
        this.to(SessionState.AwaitingStartup);
      });
      secure.on('error', () => secure.destroy());
      this.socket = secure;
      this.attach(secure);
    });
  }

  private forwardCancel(pid: number, secret: number): void {
    const upstream = this.ctx.cancels.resolve(pid, secret);
    // Like PostgreSQL, the requester learns nothing: the connection is closed either way.
    if (!upstream || upstream.local?.()) return this.close();
    // Close the requester's connection only once the server has closed ours, as PostgreSQL does: libpq waits
    // for that close before sending its next query, so a cancel forwarded late cannot hit that next query.
    this.socket.pause();
    sendCancel(upstream.target, upstream.pid, upstream.secret, this.ctx.limits.connectTimeoutMs)
      .catch((err: Error) => this.ctx.log('warn', `cancel forward to ${upstream.target.name} failed: ${err.message}`))
      .finally(() => this.close());
  }

  private onStartupMessage(minor: number, params: Map<string, string>): void {
    const user = params.get('user');
    if (!user) return this.fatal({ code: SqlState.InvalidAuthorization, message: 'no user name given', hint: 'The user name is your Sluice identity (the agent key name).' });
    const vetted = vetStartupParams(params);
    if (!vetted.ok) return this.fatal({ code: vetted.code, message: vetted.message, hint: vetted.hint });
    if (minor > 0 || vetted.unsupportedProtocolOptions.length > 0) {
      this.socket.write(negotiateProtocolVersion(0, vetted.unsupportedProtocolOptions));
    }
    if (this.ctx.activeSessions.size >= this.ctx.limits.maxClientConnections) {
      return this.fatal({ code: SqlState.TooManyConnections, message: `sorry, too many clients already (Sluice limit ${this.ctx.limits.maxClientConnections})`, hint: 'Retry later, or raise limits.maxClientConnections.' });
    }
    this.ctx.activeSessions.add(this);
    this.counted = true;
    this.user = user;
    this.database = params.get('database') ?? user;
    this.upstreamParams = vetted.upstream;
    this.applicationName = vetted.applicationName;
    this.framer.setTyped();
    // A cleartext secret may only cross an encrypted or loopback link.
    if (!(this.socket instanceof tls.TLSSocket) && !isLoopback(this.socket.remoteAddress)) {
      return this.fatal({ code: SqlState.InvalidAuthorization, message: 'Sluice accepts passwords only over TLS or from loopback', hint: 'Connect with sslmode=require (configure tls in Sluice) or from this machine.' });
    }
    this.to(SessionState.AwaitingPassword);
    this.socket.write(authRequest(AuthCode.CleartextPassword));
  }

  private onPassword(frame: Buffer): void {
    if (frame[0] !== Frontend.PasswordMessage) {
      return this.fatal({ code: SqlState.ProtocolViolation, message: 'expected a password message' });
    }
    const s = readCString(frame, 5);
    if (!s || s[1] !== frame.length) return this.fatal({ code: SqlState.ProtocolViolation, message: 'malformed password message' });
    this.to(SessionState.Authenticating);
    // Nothing more is read until the key is checked: a client cannot make Sluice buffer data before it is trusted.
    // Only frames already in the chunk being framed land in `early`; the Relay resumes reading.
    this.socket.pause();
    this.authenticate(s[0]).catch((err: Error) => {
      this.ctx.log('error', `authentication error: ${err.stack ?? err.message}`);
      this.fatal({ code: SqlState.InvalidPassword, message: 'authentication failed: internal error' });
    });
  }

  private async authenticate(secret: string): Promise<void> {
    const check = await this.ctx.authenticate(this.user, secret);
    if (this.state !== SessionState.Authenticating) return;
    if (!check.ok) {
      this.recordRefusedLogin(check.auditReason);
      return this.fatal({ code: check.code, message: check.message, hint: check.hint });
    }
    const target = this.ctx.targets.get(this.database);
    if (!target) {
      this.recordRefusedLogin(`unknown target "${this.database}"`);
      return this.fatal({ code: SqlState.InvalidCatalogName, message: `target "${this.database}" does not exist`, hint: `The database name selects a Sluice target: ${[...this.ctx.targets.keys()].join(', ')}.` });
    }
    clearTimeout(this.authTimer);
    this.to(SessionState.ConnectingUpstream);
    const sessionId = this.ctx.audit.openSession({ identity: this.user, target: target.name, clientAddr: this.clientAddr(), applicationName: this.applicationName });
    // A token's issuer and subject are part of who connected; agent key sessions are fully named by the session row.
    if (check.kind === 'oidc') this.ctx.audit.event('session_identity', sessionId, check.detail);
    if (check.endsAt !== null) this.endAtExpiry(check.endsAt, check.expiresAt ?? check.endsAt);
    // Policy is bound before connecting: its limits become the upstream session's defaults.
    // Policy matches the bare address: `::1:5555` would be ambiguous for IPv6.
    const startupSearchPath = Object.entries(this.upstreamParams).find(([k]) => k.toLowerCase() === 'search_path')?.[1] ?? null;
    const gate = this.ctx.createGate({ identity: check.identity, target: target.name, applicationName: this.applicationName, clientAddr: this.socket.remoteAddress ?? '', startupSearchPath });
    this.upstreamParams = withSessionDefaults(this.upstreamParams, gate.sessionDefaults);
    await this.connect(target, sessionId, gate);
  }

  private async connect(target: UpstreamTarget, sessionId: number, gate: StatementGate): Promise<void> {
    let up;
    try {
      up = await connectUpstream(target, this.ctx.resolvePassword(target), this.upstreamParams, {
        timeoutMs: this.ctx.limits.connectTimeoutMs, maxServerMessageBytes: this.ctx.limits.maxServerMessageBytes,
      });
    } catch (err) {
      const e = err as Error;
      const server = e instanceof UpstreamError ? e.serverError : undefined;
      const reason = `upstream connect failed: ${e.message}`;
      this.ctx.audit.endSession(sessionId, reason);
      // The server's own refusal (e.g. too many connections) keeps its SQLSTATE; nothing of the credential is echoed.
      return this.fatal({
        code: server?.C ?? SqlState.ConnectionFailure,
        message: `Sluice could not connect to target "${target.name}": ${e.message}`,
        hint: server?.C === '53300' ? 'The database has no free connection slots; retry later.' : 'Check that the target is up and its credential in the Sluice config is right.',
      });
    }
    if (this.state !== SessionState.ConnectingUpstream) {
      up.socket.destroy();
      this.ctx.audit.endSession(sessionId, this.endReason ?? 'client disconnected during upstream connect');
      return;
    }
    const pinned = new PinnedSettings();
    for (const f of up.greeting) {
      const why = f[0] === Backend.ParameterStatus ? pinned.check(f) : null;
      if (why) {
        up.socket.destroy();
        this.ctx.audit.endSession(sessionId, `refused: ${why}`);
        return this.fatal({ code: SqlState.FeatureNotSupported, message: why, hint: 'Connect with client_encoding=UTF8 (PGCLIENTENCODING=UTF8).' });
      }
    }
    const key = this.ctx.cancels.register(target, up.pid, up.secret);
    this.upstreamKey = { target, pid: up.pid, secret: up.secret };
    this.to(SessionState.Relaying);
    this.detach(this.socket);
    const hello = [authRequest(AuthCode.Ok), ...up.greeting, backendKeyData(key.pid, key.secret), up.ready];
    this.socket.write(Buffer.concat(hello));
    this.relay = new Relay(this.socket, this.framer, up, this.ctx, {
      sessionId, target, early: this.early, cancelPid: key.pid, pinned, gate,
      onClosed: () => { this.clearExpiry(); this.releaseSlot(); },
    });
  }

  /**
   * A session lives no longer than the token that opened it: at `endsAt` the running statement is cancelled and the
   * client gets a FATAL error; the reason is the session's recorded end.
   */
  private endAtExpiry(endsAt: number, expiresAt: number): void {
    // setTimeout holds at most 2^31-1 ms (~24.8 days); longer waits are taken in steps.
    const wait = Math.min(Math.max(endsAt - Date.now(), 0), 2 ** 31 - 1);
    this.expiryTimer = setTimeout(() => {
      if (Date.now() < endsAt) return this.endAtExpiry(endsAt, expiresAt);
      this.expiryTimer = null;
      const at = new Date(expiresAt).toISOString();
      const error = { code: SqlState.InvalidAuthorization, message: `terminating connection because the OIDC token of "${this.user}" expired at ${at}`, hint: 'Get a new token (sluice token / sluice exec) and reconnect.' };
      const reason = `token expired at ${at}`;
      if (this.relay) {
        const up = this.upstreamKey;
        if (up) sendCancel(up.target, up.pid, up.secret, this.ctx.limits.connectTimeoutMs).catch(() => { /* the session ends either way */ });
        this.relay.endWithError(error, reason);
      } else {
        this.endReason = reason;
        this.fatal(error);
      }
    }, wait);
    this.expiryTimer.unref();
  }

  private clearExpiry(): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
  }

  private recordRefusedLogin(reason: string): void {
    const id = this.ctx.audit.openSession({ identity: this.user, target: this.database, clientAddr: this.clientAddr(), applicationName: this.applicationName });
    this.ctx.audit.endSession(id, reason);
  }

  private clientAddr(): string {
    return `${this.socket.remoteAddress ?? '?'}:${this.socket.remotePort ?? '?'}`;
  }

  private fatal(e: Omit<PgError, 'severity'>): void {
    if (this.state === SessionState.Closed) return;
    if (this.socket.writable) this.socket.end(errorResponse({ severity: 'FATAL', ...e }));
    this.close();
    // Give the error a moment to reach the client, then make sure the socket is gone.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private close(): void {
    if (this.state === SessionState.Closed) return;
    this.to(SessionState.Closed);
    clearTimeout(this.authTimer);
    if (!this.relay) this.clearExpiry();
    this.detach(this.socket);
    this.socket.on('error', () => {});
    this.releaseSlot();
    if (!this.socket.writableEnded) this.socket.end();
  }

  private releaseSlot(): void {
    if (this.counted) {
      this.counted = false;
      this.ctx.activeSessions.delete(this);
    }
  }
}

/**
 * The client's startup settings with policy's session defaults on top. A client's own statement_timeout stays when
 * it is stricter than the ceiling (0 means none, so the ceiling applies).
 */
function withSessionDefaults(params: Record<string, string>, defaults: Readonly<Record<string, string>>): Record<string, string> {
  const out = { ...params };
  for (const [k, v] of Object.entries(defaults)) {
    const own = Object.keys(out).find((p) => p.toLowerCase() === k);
    if (k === 'statement_timeout' && own) {
      const mine = parseTimeoutMs(out[own]!);
      if (mine !== null && mine > 0 && mine <= parseTimeoutMs(v)!) continue;
    }
    if (own) delete out[own];
    out[k] = v;
  }
  return out;
}

function isLoopback(addr: string | undefined): boolean {
  if (!addr) return false;
  return addr === '::1' || addr.startsWith('127.') || addr.startsWith('::ffff:127.');
}
