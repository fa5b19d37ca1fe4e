/**
 * The contract over Electron IPC, main side: one `ipcMain.handle` per contract method, each refusing any sender
 * but our own window's top-level frame showing our own page, and validating its argument with the contract's zod
 * schema (operator/service.ts `dispatch`) before a handler runs. Events go the other way, batched per turn.
 */
import type { Method, SluiceEvent } from '../../src/contract/api.js';
import { ContractError } from '../../src/operator/errors.js';
import type { EventBus } from '../../src/operator/event-bus.js';
import { dispatch, type Caller, type ContractHandlers } from '../../src/operator/service.js';
import { callChannel, EVENTS_CHANNEL, type IpcReply } from './channels.js';
import type { LogFn } from './ports.js';

/** The part of Electron's WebFrameMain the check reads. */
export interface FrameLike {
  readonly url: string;
  readonly parent: FrameLike | null;
  readonly processId: number;
  readonly routingId: number;
}

/** The part of Electron's IpcMainInvokeEvent the bridge reads. */
export interface InvokeEventLike {
  readonly sender: { readonly id: number };
  readonly senderFrame: FrameLike | null;
}

export interface IpcMainPort {
  handle(channel: string, listener: (event: InvokeEventLike, ...args: unknown[]) => unknown): void;
  removeHandler(channel: string): void;
}

/** The console window as the sender check sees it; null while there is no window. */
export interface ConsoleWindowIdentity {
  webContentsId: number;
  mainFrame: FrameLike;
}

/**
 * True only for our window's main frame (not an iframe, not another window or webview) whose document comes from
 * one of `origins` (sluice://app, or the Vite dev server in development). Checked on every message: a frame that
 * navigated elsewhere keeps its process and routing id, so the URL is checked too.
 */
export function isOwnTopFrame(event: InvokeEventLike, window: ConsoleWindowIdentity | null, origins: readonly string[]): boolean {
  const frame = event.senderFrame;
  if (!window || !frame) return false;
  if (event.sender.id !== window.webContentsId) return false;
  if (frame.parent !== null) return false;
  if (frame.processId !== window.mainFrame.processId || frame.routingId !== window.mainFrame.routingId) return false;
  return origins.includes(originOf(frame.url));
}

/** scheme://host[:port] of a URL, '' when it does not parse (then nothing matches). */
export function originOf(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return '';
  }
}

export interface ContractIpcOptions {
  ipcMain: IpcMainPort;
  handlers: ContractHandlers;
  methods: readonly Method[];
  /** Who the decisions are recorded as. */
  caller: Caller;
  isTrustedSender(event: InvokeEventLike): boolean;
  log: LogFn;
}

export class ForeignSenderError extends Error {
  constructor() {
    super('refused: Sluice answers only its own console window');
  }
}

/** Registers the handlers; returns a function that removes them again. */
export function registerContractIpc(opts: ContractIpcOptions): () => void {
  for (const method of opts.methods) {
    opts.ipcMain.handle(callChannel(method), async (event, ...args): Promise<IpcReply> => {
      if (!opts.isTrustedSender(event)) {
        opts.log('warn', `IPC ${method} refused: sender frame ${event.senderFrame?.url ?? '(gone)'} is not the console window`);
        // A foreign frame gets no contract reply at all, not even an error shape to learn from.
        throw new ForeignSenderError();
      }
      if (args.length > 1) {
        return { ok: false, error: { code: 'invalid_arguments', message: `${method} takes one argument object, got ${args.length} arguments` } };
      }
      try {
        return { ok: true, result: (await dispatch(opts.handlers, method, args[0], opts.caller)) as never };
      } catch (err) {
        if (err instanceof ContractError) return { ok: false, error: err.toApiError() };
        opts.log('error', `IPC ${method}: internal error: ${(err as Error).stack ?? String(err)}`);
        return { ok: false, error: { code: 'internal', message: 'internal error (see the Sluice log)' } };
      }
    });
  }
  return () => {
    for (const method of opts.methods) opts.ipcMain.removeHandler(callChannel(method));
  };
}

export interface EventTarget {
  isDestroyed(): boolean;
  send(channel: string, payload: unknown): void;
}

/**
 * Forwards the broker's events to the console window, one message per event-loop turn (a busy feed costs one IPC
 * message, not thousands). `target()` is read at send time: the window may be closed (tray) and opened again.
 */
export function forwardEvents(bus: Pick<EventBus, 'on'>, target: () => EventTarget | null): () => void {
  let batch: SluiceEvent[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const events = batch;
    batch = [];
    const t = target();
    if (t && !t.isDestroyed()) t.send(EVENTS_CHANNEL, events);
  };
  return bus.on((event) => {
    if (!target()) return;
    batch.push(event);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  });
}
