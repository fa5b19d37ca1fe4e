/**
 * Builds what the preload hands to the page through contextBridge. Kept apart from preload.ts (which imports
 * electron) so the shape can be tested on plain Node.
 *
 * Rules (Electron security checklist, DESIGN.md section 1): the page never gets ipcRenderer, a channel name, or an
 * IpcRendererEvent; each function takes exactly the contract arguments and forwards them to its own channel.
 */
import type { Method, SluiceEvent } from '../../src/contract/api.js';
import { BRIDGE_KEY, callChannel, EVENTS_CHANNEL, EVENTS_KEY } from './channels.js';

export interface ContextBridgePort {
  exposeInMainWorld(apiKey: string, api: unknown): void;
}

export interface IpcRendererPort {
  invoke(channel: string, ...args: unknown[]): Promise<unknown>;
  on(channel: string, listener: (event: unknown, ...args: unknown[]) => void): unknown;
}

export function exposeContract(bridge: ContextBridgePort, ipc: IpcRendererPort, methods: readonly Method[]): void {
  const api: Record<string, unknown> = {};
  for (const method of methods) {
    const channel = callChannel(method);
    // One argument only: whatever else a page passes is dropped here, and main refuses extra arguments anyway.
    api[method] = (args?: unknown) => ipc.invoke(channel, args);
  }
  const listeners = new Set<(events: SluiceEvent[]) => void>();
  // One IPC listener for the life of the page; the IpcRendererEvent stays here (it carries `sender`).
  ipc.on(EVENTS_CHANNEL, (_event, events) => {
    if (!Array.isArray(events)) return;
    for (const l of listeners) {
      try {
        l(events as SluiceEvent[]);
      } catch (err) {
        console.error('sluice: event listener failed', err);
      }
    }
  });
  api[EVENTS_KEY] = (listener: unknown) => {
    if (typeof listener !== 'function') throw new TypeError('onEvents(listener): listener must be a function');
    const l = listener as (events: SluiceEvent[]) => void;
    listeners.add(l);
    return () => {
      listeners.delete(l);
    };
  };
  bridge.exposeInMainWorld(BRIDGE_KEY, Object.freeze(api));
}
