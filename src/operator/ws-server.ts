/**
 * The contract over a WebSocket on a loopback port, for `sluice serve` (the headless UI and the CLI).
 *
 * Who may connect: only a client that presents the operator token (printed at start, and in a 0600 file in the
 * data directory) and, if it is a browser, only a page served from this very origin. Browsers send Origin on every
 * WebSocket handshake, so a page on any other site (or a DNS-rebinding name, whose Host is checked too) is refused
 * even before the token is looked at; CLI clients send no Origin and authenticate with the token alone.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  ClientMessageSchema, CONTRACT_VERSION, MAX_REQUEST_BYTES, METHODS, WS_PATH, WS_SUBPROTOCOL, WS_TOKEN_PROTOCOL_PREFIX,
  type ServerMessage, type SluiceEvent,
} from '../contract/api.js';
import { ContractError } from './errors.js';
import type { EventBus } from './event-bus.js';
import { dispatch, operatorFor, type ContractHandlers } from './service.js';
import { defaultUiRoot, loadUiFiles, serveUi } from './static-ui.js';

export interface OperatorServerOptions {
  handlers: ContractHandlers;
  events: EventBus;
  /** Loopback port; 0 picks a free one. */
  port: number;
  /** Default: 32 random bytes. */
  token?: string;
  log?: (level: 'info' | 'warn' | 'error', msg: string) => void;
  maxClients?: number;
  /** A client whose unsent events exceed this is disconnected rather than buffered without bound. */
  maxBufferedBytes?: number;
  /** Directory of the built console (default dist/renderer); null serves no UI. */
  uiRoot?: string | null;
}

export interface OperatorServer {
  port: number;
  token: string;
  /** ws://127.0.0.1:PORT/api */
  url: string;
  /** The one browser origin allowed: http://127.0.0.1:PORT */
  origin: string;
  /** The console with the token in the fragment (http://127.0.0.1:PORT/#token=...): browsers never send a fragment. */
  consoleUrl: string;
  /** False when there is no console build to serve (the API works without it). */
  uiAvailable: boolean;
  clientCount(): number;
  close(): Promise<void>;
}

const HOST = '127.0.0.1';

export async function startOperatorServer(opts: OperatorServerOptions): Promise<OperatorServer> {
  const token = opts.token ?? randomBytes(32).toString('base64url');
  const tokenDigest = digest(token);
  const log = opts.log ?? (() => {});
  const caller = operatorFor('websocket');
  const clients = new Map<WebSocket, SluiceEvent[]>();
  let flushScheduled = false;
  let port = 0;

  const ui = opts.uiRoot === null ? null : loadUiFiles(opts.uiRoot ?? defaultUiRoot());
  // The console is served from the same origin as the WebSocket: the one origin checkHandshake accepts.
  const http = createServer((req, res) => serveUi(ui, port, req, res));
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_REQUEST_BYTES,
    // Select our protocol only: the token protocol is never echoed back.
    handleProtocols: (offered) => (offered.has(WS_SUBPROTOCOL) ? WS_SUBPROTOCOL : false),
  });

  const refuse = (socket: Duplex, status: number, text: string) => {
    socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${text.length + 1}\r\n\r\n${text}\n`);
  };

  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const refusal = checkHandshake(req, port, tokenDigest);
    if (refusal) {
      log('warn', `operator API: refused a WebSocket handshake (${refusal.text})`);
      return refuse(socket, refusal.status, refusal.text);
    }
    if (clients.size >= (opts.maxClients ?? 32)) return refuse(socket, 503, 'too many operator connections');
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws));
  });

  const send = (ws: WebSocket, msg: ServerMessage) => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
  };

  const onConnection = (ws: WebSocket) => {
    clients.set(ws, []);
    ws.on('close', () => clients.delete(ws));
    ws.on('error', () => ws.terminate());
    send(ws, { type: 'hello', version: CONTRACT_VERSION, methods: METHODS });
    ws.on('message', (data, isBinary) => {
      void handle(ws, data as Buffer, isBinary);
    });
  };

  const handle = async (ws: WebSocket, data: Buffer, isBinary: boolean) => {
    let id: number | string | null = null;
    try {
      if (isBinary) throw new ContractError('bad_request', 'send requests as JSON text frames');
      let json: unknown;
      try {
        json = JSON.parse(data.toString('utf8'));
      } catch {
        throw new ContractError('bad_request', 'the message is not JSON');
      }
      const msg = ClientMessageSchema.safeParse(json);
      if (!msg.success) throw new ContractError('bad_request', 'expected { "id": ..., "method": "...", "args": {...} }');
      id = msg.data.id;
      const result = await dispatch(opts.handlers, msg.data.method, msg.data.args, caller);
      send(ws, { type: 'reply', id, ok: true, result });
    } catch (err) {
      if (err instanceof ContractError) return send(ws, { type: 'reply', id, ok: false, error: err.toApiError() });
      log('error', `operator API: internal error: ${(err as Error).stack ?? String(err)}`);
      send(ws, { type: 'reply', id, ok: false, error: { code: 'internal', message: 'internal error (see the Sluice log)' } });
    }
  };

  // Events are batched per event-loop turn: a busy feed is one frame per client per turn.
  const flush = () => {
    flushScheduled = false;
    const limit = opts.maxBufferedBytes ?? 16 * 1024 * 1024;
    for (const [ws, queue] of clients) {
      if (queue.length === 0) continue;
      clients.set(ws, []);
      if (ws.bufferedAmount > limit) {
        ws.close(1013, 'too slow: events are not being read');
        continue;
      }
      send(ws, { type: 'events', events: queue });
    }
  };
  const unsubscribe = opts.events.on((event) => {
    if (clients.size === 0) return;
    for (const queue of clients.values()) queue.push(event);
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
  });

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(opts.port, HOST, () => {
      http.off('error', reject);
      resolve();
    });
  });
  port = (http.address() as { port: number }).port;

  let closing: Promise<void> | null = null;
  return {
    port,
    token,
    url: `ws://${HOST}:${port}${WS_PATH}`,
    origin: `http://${HOST}:${port}`,
    consoleUrl: `http://${HOST}:${port}/#token=${token}`,
    uiAvailable: ui !== null,
    clientCount: () => clients.size,
    close() {
      closing ??= new Promise<void>((resolve) => {
        unsubscribe();
        for (const ws of clients.keys()) ws.close(1001, 'Sluice is shutting down');
        wss.close();
        http.close(() => resolve());
        // Clients that do not finish the close handshake must not keep the port open.
        setTimeout(() => {
          for (const ws of clients.keys()) ws.terminate();
          http.closeAllConnections();
        }, 1000).unref();
      });
      return closing;
    },
  };
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** Why a handshake is refused, or null. Never mentions the presented token. */
export function checkHandshake(req: IncomingMessage, port: number, tokenDigest: Buffer): { status: number; text: string } | null {
  const path = (req.url ?? '').split('?', 1)[0];
  if (path !== WS_PATH) return { status: 404, text: 'not found' };
  // DNS rebinding: a foreign name resolving to 127.0.0.1 still carries its own Host.
  const host = req.headers.host;
  if (host !== `${HOST}:${port}` && host !== `localhost:${port}`) return { status: 403, text: 'unexpected Host header' };
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== `http://${HOST}:${port}`) return { status: 403, text: 'origin not allowed' };
  const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter(Boolean);
  if (!offered.includes(WS_SUBPROTOCOL)) return { status: 400, text: `offer the ${WS_SUBPROTOCOL} subprotocol` };
  const auth = req.headers.authorization;
  const presented = auth?.startsWith('Bearer ')
    ? auth.slice('Bearer '.length).trim()
    : offered.find((p) => p.startsWith(WS_TOKEN_PROTOCOL_PREFIX))?.slice(WS_TOKEN_PROTOCOL_PREFIX.length);
  if (!presented || !timingSafeEqual(digest(presented), tokenDigest)) return { status: 401, text: 'operator token missing or wrong' };
  return null;
}
