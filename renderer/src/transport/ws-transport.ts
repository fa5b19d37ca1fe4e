/**
 * The contract over the operator WebSocket of `sluice serve`, from a page it served. The token comes from the
 * URL fragment (#token=..., never sent to the server) and is offered as the `sluice.token.<token>` subprotocol,
 * the only way a browser can present it on a WebSocket handshake.
 */
import {
  WS_PATH, WS_SUBPROTOCOL, WS_TOKEN_PROTOCOL_PREFIX, type Method, type ServerMessage, type SluiceEvent,
} from '../../../src/contract/api.js';
import { tokenFromHash } from './token.js';
import { ApiError, type ConnectionState, type SluiceTransport } from './transport.js';

const RETRY_MS = [500, 1000, 2000, 5000];

export function createWebSocketTransport(opts: { url: string; token: string }): SluiceTransport {
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const eventListeners = new Set<(events: readonly SluiceEvent[]) => void>();
  const stateListeners = new Set<(s: ConnectionState) => void>();
  let state: ConnectionState = { kind: 'connecting' };
  let ws: WebSocket | null = null;
  let nextId = 1;
  let attempt = 0;
  let closed = false;
  let queue: string[] = [];

  const setState = (s: ConnectionState) => {
    state = s;
    for (const l of stateListeners) l(s);
  };

  const open = () => {
    setState({ kind: 'connecting' });
    const socket = new WebSocket(opts.url, [WS_SUBPROTOCOL, `${WS_TOKEN_PROTOCOL_PREFIX}${opts.token}`]);
    ws = socket;
    socket.onopen = () => {
      attempt = 0;
      setState({ kind: 'open' });
      for (const m of queue) socket.send(m);
      queue = [];
    };
    socket.onmessage = (e: MessageEvent<unknown>) => {
      if (typeof e.data !== 'string') return;
      const msg = JSON.parse(e.data) as ServerMessage;
      if (msg.type === 'events') {
        for (const l of eventListeners) l(msg.events);
      } else if (msg.type === 'reply' && typeof msg.id === 'number') {
        const p = pending.get(msg.id);
        if (!p) return;
        pending.delete(msg.id);
        if (msg.ok) p.resolve(msg.result);
        else p.reject(new ApiError(msg.error.code, msg.error.message, msg.error.issues));
      }
    };
    socket.onclose = (e) => {
      ws = null;
      for (const p of pending.values()) p.reject(new ApiError('unavailable', 'the connection to Sluice closed'));
      pending.clear();
      // Calls already failed are never sent later: a decision must not land minutes after the operator gave up.
      queue = [];
      if (closed) return;
      const retryInMs = RETRY_MS[Math.min(attempt++, RETRY_MS.length - 1)]!;
      // 1006 without a reason is what a refused handshake looks like from a page (wrong token or origin).
      setState({ kind: 'closed', reason: e.reason || (e.code === 1006 ? 'Sluice is not reachable, or refused this page (token?)' : `closed (${e.code})`), retryInMs });
      setTimeout(() => { if (!closed) open(); }, retryInMs);
    };
  };
  open();

  return {
    call(method: Method, args: unknown) {
      const id = nextId++;
      const text = JSON.stringify({ id, method, args });
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        if (ws && ws.readyState === WebSocket.OPEN) ws.send(text);
        else queue.push(text);
      });
    },
    onEvents(l) {
      eventListeners.add(l);
      return () => eventListeners.delete(l);
    },
    onState(l) {
      stateListeners.add(l);
      l(state);
      return () => stateListeners.delete(l);
    },
    close() {
      closed = true;
      ws?.close(1000, 'console closed');
    },
  };
}

/** ws://host/api of the page's own origin. */
export function sameOriginApiUrl(loc: Location): string {
  return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}${WS_PATH}`;
}

/**
 * Takes the token out of the fragment (then removes it from the address bar and history) and keeps it for this
 * tab only, so a reload works and a copied URL does not carry it.
 */
export function takeToken(loc: Location, storage: Storage, history: History): string | null {
  const token = tokenFromHash(loc.hash);
  if (token) {
    storage.setItem('sluice.token', token);
    // Keep a route given with it (#/inbox&token=...), drop the token.
    const rest = loc.hash.replace(/(^#|&)token=[A-Za-z0-9_-]+/, '$1').replace(/^#&?$/, '').replace(/&$/, '');
    history.replaceState(null, '', `${loc.pathname}${loc.search}${rest}`);
    return token;
  }
  return storage.getItem('sluice.token');
}
