/**
 * The IPC surface between the console window and the main process, stated once. Each contract method has its own
 * invoke channel (main registers one handler per method, so an unknown channel has no handler at all); events flow
 * one way, main -> window, on a single channel. Nothing else is registered: no generic "call" channel a page could
 * use to reach anything but the contract.
 */
import type { ApiError, Args, Method, Results, SluiceEvent } from '../../src/contract/api.js';

export const CALL_CHANNEL_PREFIX = 'sluice:call:';
/** Main -> renderer only: batches of contract events. */
export const EVENTS_CHANNEL = 'sluice:events';

export function callChannel(method: Method): string {
  return `${CALL_CHANNEL_PREFIX}${method}`;
}

/**
 * What an IPC call resolves with: the same ok/result/error shape as the WebSocket reply. Errors travel as data
 * because contextBridge copies a thrown Error's message only, and the console needs the code and the zod issues.
 */
export type IpcReply<M extends Method = Method> = { ok: true; result: Results[M] } | { ok: false; error: ApiError };

/** The name of the event subscription on the bridge object (never a method name of the contract). */
export const EVENTS_KEY = 'onEvents';
/** `window.sluice` in the console. */
export const BRIDGE_KEY = 'sluice';

/**
 * The object the preload exposes as `window.sluice`: one function per contract method and the event subscription.
 * The renderer's Electron transport wraps it: `const r = await window.sluice[m](args); if (!r.ok) throw r.error`.
 */
export type SluiceBridge = { [M in Method]: (args?: Args<M>) => Promise<IpcReply<M>> } & {
  /** Returns the unsubscribe function. Events arrive in batches (one per main-process turn). */
  onEvents(listener: (events: SluiceEvent[]) => void): () => void;
};

// Fails to compile if the contract ever gains a method called like the event subscription.
const eventsKeyIsFree: typeof EVENTS_KEY extends Method ? never : true = true;
void eventsKeyIsFree;
