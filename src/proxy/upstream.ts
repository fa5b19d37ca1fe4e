import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { AuthCode, Backend } from '../protocol/codes.js';
import { Framer } from '../protocol/framer.js';
import {
  cancelRequest, parseErrorFields, passwordMessage, readCString, sslRequest, startupMessage,
} from '../protocol/messages.js';
import { md5PasswordResponse, ScramClient } from './upstream-auth.js';

export type TlsMode = 'disable' | 'prefer' | 'require' | 'verify-full';

/** What the proxy needs to reach one target; the password is resolved just before use and never stored here. */
export interface UpstreamTarget {
  name: string;
  host: string;
  port: number;
  database: string;
  user: string;
  tls: { mode: TlsMode; ca?: string | undefined };
}

export interface UpstreamSession {
  socket: net.Socket;
  /** Server frames received during startup to pass on to the client unchanged (ParameterStatus, NoticeResponse). */
  greeting: Buffer[];
  /** The ReadyForQuery frame that ended the startup. */
  ready: Buffer;
  pid: number;
  secret: number;
  /** The server-side framer, which may hold part of a frame that arrived after ReadyForQuery. */
  framer: Framer;
  /** Frames the server sent after ReadyForQuery in the same chunk (normally none). */
  leftover: Buffer[];
}

/** Error raised while connecting; `serverError` carries the upstream's own ErrorResponse fields if it sent one. */
export class UpstreamError extends Error {
  constructor(message: string, readonly serverError?: Record<string, string>) {
    super(message);
  }
}

/** Opens a TCP connection and negotiates TLS as the target's mode says. */
export async function openTransport(target: UpstreamTarget, timeoutMs: number): Promise<net.Socket> {
  const sock = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host: target.host, port: target.port });
    const timer = setTimeout(() => { s.destroy(); reject(new UpstreamError(`connect timed out after ${timeoutMs} ms`)); }, timeoutMs);
    s.once('connect', () => { clearTimeout(timer); s.removeAllListeners('error'); resolve(s); });
    s.once('error', (err) => { clearTimeout(timer); reject(new UpstreamError(err.message)); });
  });
  sock.setNoDelay(true);
  if (target.tls.mode === 'disable') return sock;
  sock.write(sslRequest());
  const answer = await readExactlyOneByte(sock, timeoutMs);
  if (answer === 'N') {
    // Plaintext from here, as under 'disable': readExactlyOneByte paused the socket, and a socket paused explicitly
    // stays paused when the caller attaches its 'data' listener. Nothing is lost: the server says nothing more until
    // it receives the startup message (or closes after a cancel request).
    if (target.tls.mode === 'prefer') return sock.resume();
    sock.destroy();
    throw new UpstreamError(`server refused TLS but the target requires it (tls.mode ${target.tls.mode})`);
  }
  if (answer !== 'S') {
    sock.destroy();
    throw new UpstreamError(`unexpected answer to SSLRequest: ${JSON.stringify(answer)}`);
  }
  const verify = target.tls.mode === 'verify-full';
  const isIp = net.isIP(target.host) !== 0;
  return await new Promise<net.Socket>((resolve, reject) => {
    const t = tls.connect({
      socket: sock,
      servername: isIp ? undefined : target.host,
      ca: target.tls.ca ? readFileSync(target.tls.ca) : undefined,
      rejectUnauthorized: verify,
      // verify-full checks the host name (or IP SAN) against the certificate; the default checker does both.
      checkServerIdentity: verify ? (_servername, cert) => tls.checkServerIdentity(target.host, cert) : () => undefined,
    });
    t.once('secureConnect', () => { t.removeAllListeners('error'); resolve(t); });
    t.once('error', (err) => { t.destroy(); reject(new UpstreamError(`TLS handshake with server failed: ${err.message}`)); });
  });
}

/**
 * Reads the one-byte answer to SSLRequest. Any byte after it is a man-in-the-middle injecting plaintext
 * before the handshake (CVE-2021-23222), so more than one byte is refused.
 */
function readExactlyOneByte(sock: net.Socket, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { done(); sock.destroy(); reject(new UpstreamError('no answer to SSLRequest')); }, timeoutMs);
    const onData = (chunk: Buffer) => {
      done();
      sock.pause();
      if (chunk.length !== 1) { sock.destroy(); reject(new UpstreamError('server sent unencrypted data after its SSLRequest answer')); return; }
      resolve(String.fromCharCode(chunk[0]!));
    };
    const onEnd = () => { done(); reject(new UpstreamError('server closed the connection during SSLRequest')); };
    const done = () => { clearTimeout(timer); sock.off('data', onData); sock.off('error', onEnd); sock.off('close', onEnd); };
    sock.on('data', onData);
    sock.once('error', onEnd);
    sock.once('close', onEnd);
  });
}

/** Connects and authenticates to the target with its own credential, up to the first ReadyForQuery. */
export async function connectUpstream(
  target: UpstreamTarget,
  password: string | undefined,
  params: Record<string, string>,
  opts: { timeoutMs: number; maxServerMessageBytes: number },
): Promise<UpstreamSession> {
  const socket = await openTransport(target, opts.timeoutMs);
  const framer = new Framer(opts.maxServerMessageBytes, 'typed');
  socket.write(startupMessage({ ...params, user: target.user, database: target.database }));
  const greeting: Buffer[] = [];
  let pid = 0;
  let secret = 0;
  let scram: ScramClient | null = null;

  return await new Promise<UpstreamSession>((resolve, reject) => {
    let settled = false;
    const fail = (msg: string, serverError?: Record<string, string>) => {
      if (settled) return;
      settled = true;
      cleanup();
      socket.destroy();
      reject(new UpstreamError(msg, serverError));
    };
    const timer = setTimeout(() => fail(`authentication did not finish within ${opts.timeoutMs} ms`), opts.timeoutMs);
    const needPassword = (): string => {
      if (password === undefined) throw new UpstreamError('server asked for a password but the target has none configured');
      return password;
    };
    // Frames are handled in order; SCRAM's key derivation is async, so work is chained on a promise.
    let chain = Promise.resolve();
    const onFrame = (frame: Buffer, rest: Buffer[] | null) => {
      if (settled) return;
      if (rest) { rest.push(frame); return; }
      const code = frame[0];
      switch (code) {
        case Backend.Authentication: {
          const kind = frame.readInt32BE(5);
          chain = chain.then(async () => {
            switch (kind) {
              case AuthCode.Ok: return;
              case AuthCode.CleartextPassword:
                socket.write(passwordMessage(Buffer.from(needPassword() + '\0', 'utf8')));
                return;
              case AuthCode.MD5Password:
                socket.write(passwordMessage(Buffer.from(md5PasswordResponse(target.user, needPassword(), frame.subarray(9, 13)) + '\0', 'utf8')));
                return;
              case AuthCode.SASL: {
                const mechs = saslMechanisms(frame);
                if (!mechs.includes('SCRAM-SHA-256')) throw new UpstreamError(`server offers no supported SASL mechanism (${mechs.join(', ')})`);
                scram = new ScramClient(needPassword());
                socket.write(passwordMessage(scram.initialResponse()));
                return;
              }
              case AuthCode.SASLContinue:
                if (!scram) throw new UpstreamError('SASLContinue before SASL');
                socket.write(passwordMessage(await scram.continue(frame.toString('utf8', 9))));
                return;
              case AuthCode.SASLFinal:
                if (!scram) throw new UpstreamError('SASLFinal before SASL');
                scram.finish(frame.toString('utf8', 9));
                return;
              default:
                throw new UpstreamError(`server asked for an unsupported authentication method (${kind})`);
            }
          }).catch((err: Error) => fail(err.message));
          return;
        }
        case Backend.ErrorResponse: {
          const f = parseErrorFields(frame);
          fail(f.M ?? 'server refused the connection', f);
          return;
        }
        case Backend.BackendKeyData:
          pid = frame.readInt32BE(5);
          secret = frame.readInt32BE(9);
          return;
        case Backend.ParameterStatus:
        case Backend.NoticeResponse:
          greeting.push(frame);
          return;
        case Backend.NegotiateProtocolVersion:
          return; // we ask for 3.0 with no options; nothing to adjust
        case Backend.ReadyForQuery:
          chain = chain.then(() => {
            if (settled) return;
            settled = true;
            cleanup();
            socket.pause();
            resolve({ socket, greeting, ready: frame, pid, secret, framer, leftover });
          });
          return;
        default:
          fail(`unexpected message ${JSON.stringify(String.fromCharCode(code ?? 0))} during startup`);
      }
    };
    const leftover: Buffer[] = [];
    let afterReady: Buffer[] | null = null;
    const onData = (chunk: Buffer) => {
      const err = framer.push(chunk, (f) => {
        onFrame(f, afterReady);
        if (f[0] === Backend.ReadyForQuery) afterReady = leftover;
      });
      if (err) fail(`server sent a message that breaks the frame limits (${err.kind}, length ${err.declared})`);
    };
    const onClose = () => fail('server closed the connection during startup');
    const onError = (err: Error) => fail(err.message);
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onError);
    };
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('error', onError);
  });
}

function saslMechanisms(frame: Buffer): string[] {
  const out: string[] = [];
  let at = 9;
  for (;;) {
    const s = readCString(frame, at);
    if (!s || s[0] === '') return out;
    out.push(s[0]);
    at = s[1];
  }
}

/** Forwards a client's cancel to the upstream backend it maps to. Fire and forget, like libpq's PQcancel. */
export async function sendCancel(target: UpstreamTarget, pid: number, secret: number, timeoutMs: number): Promise<void> {
  const sock = await openTransport(target, timeoutMs);
  await new Promise<void>((resolve) => {
    sock.on('error', () => resolve());
    sock.on('close', () => resolve());
    sock.end(cancelRequest(pid, secret));
    setTimeout(() => { sock.destroy(); resolve(); }, timeoutMs).unref();
  });
}
