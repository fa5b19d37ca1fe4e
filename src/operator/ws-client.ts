/**
 * A Node client of the contract over the WebSocket transport (the CLI and tests use it). Typed end to end: `call`
 * takes a method name and its arguments as the contract declares them and returns that method's result.
 */
import { WebSocket } from 'ws';
import {
  WS_SUBPROTOCOL, type ApiError, type Args, type Method, type Results, type ServerMessage, type SluiceEvent,
} from '../contract/api.js';

/** An error reply from the server, with its contract error code. */
export class ApiCallError extends Error {
  constructor(readonly error: ApiError) {
    super(error.issues?.length ? `${error.message}: ${error.issues.map((i) => `${i.path || '(args)'}: ${i.message}`).join('; ')}` : error.message);
  }
}

export interface ContractClient {
  call<M extends Method>(method: M, args: Args<M>): Promise<Results[M]>;
  onEvents(listener: (events: SluiceEvent[]) => void): void;
  /** Resolves when the connection closes (with the close reason). */
  readonly closed: Promise<string>;
  close(): void;
}

export interface ConnectOptions {
  /** Browser-style Origin header (tests use it to check the origin rule). */
  origin?: string;
  /** Present the token as a subprotocol, as a browser must, instead of an Authorization header. */
  tokenAsProtocol?: boolean;
}

export function connectContract(url: string, token: string, opts: ConnectOptions = {}): Promise<ContractClient> {
  const protocols = opts.tokenAsProtocol ? [WS_SUBPROTOCOL, `sluice.token.${token}`] : [WS_SUBPROTOCOL];
  const ws = new WebSocket(url, protocols, {
    headers: opts.tokenAsProtocol ? {} : { Authorization: `Bearer ${token}` },
    ...(opts.origin ? { origin: opts.origin } : {}),
    handshakeTimeout: 5000,
  });
  const waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  const listeners: ((events: SluiceEvent[]) => void)[] = [];
  let next = 1;
  const closed = new Promise<string>((resolve) => {
    ws.on('close', (code, reason) => {
      const why = reason.toString() || `closed (${code})`;
      for (const w of waiting.values()) w.reject(new Error(`connection to Sluice closed: ${why}`));
      waiting.clear();
      resolve(why);
    });
  });
  ws.on('message', (data) => {
    const msg = JSON.parse(String(data)) as ServerMessage;
    if (msg.type === 'events') for (const l of listeners) l(msg.events);
    else if (msg.type === 'reply' && typeof msg.id === 'number') {
      const w = waiting.get(msg.id);
      waiting.delete(msg.id);
      if (msg.ok) w?.resolve(msg.result);
      else w?.reject(new ApiCallError(msg.error));
    }
  });
  return new Promise((resolve, reject) => {
    ws.once('unexpected-response', (req, res) => {
      reject(new Error(`Sluice refused the connection: HTTP ${res.statusCode} ${res.statusMessage ?? ''}`.trim()));
      res.resume();
      req.destroy();
    });
    ws.once('error', reject);
    ws.once('open', () => {
      ws.off('error', reject);
      ws.on('error', () => {});
      resolve({
        call<M extends Method>(method: M, args: Args<M>): Promise<Results[M]> {
          const id = next++;
          return new Promise<Results[M]>((res, rej) => {
            waiting.set(id, { resolve: (v) => res(v as Results[M]), reject: rej });
            ws.send(JSON.stringify({ id, method, args }));
          });
        },
        onEvents: (l) => void listeners.push(l),
        closed,
        close: () => ws.close(1000, 'done'),
      });
    });
  });
}
