/**
 * How the console reaches the core, whatever carries it: a WebSocket under `sluice serve` (ws-transport.ts), the
 * Electron preload's contextBridge functions in the desktop app (issue 8). Screens use `ConsoleClient`, typed by
 * the contract, and never see the carrier.
 */
import type { Args, Method, Results, SluiceApi, SluiceEvent } from '../../../src/contract/api.js';
import { METHODS } from '../../../src/contract/api.js';

export type ConnectionState =
  | { kind: 'connecting' }
  | { kind: 'open' }
  /** Gone; a transport that can come back says when it will try. */
  | { kind: 'closed'; reason: string; retryInMs: number | null };

/** What a carrier implements: one generic call, event batches, connection state. */
export interface SluiceTransport {
  call(method: Method, args: unknown): Promise<unknown>;
  onEvents(listener: (events: readonly SluiceEvent[]) => void): () => void;
  onState(listener: (state: ConnectionState) => void): () => void;
  close(): void;
}

/** A contract error as the core reports it (code, message, zod issues). */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly issues: { path: string; message: string }[] = [],
  ) {
    super(message);
  }
}

export type ConsoleClient = SluiceApi & {
  onEvents: SluiceTransport['onEvents'];
  onState: SluiceTransport['onState'];
};

/**
 * The typed API over any transport. The cast is the one place a reply becomes its Results type: the core
 * produced it from the same contract, and a transport checks the envelope, not the payload.
 */
export function createClient(transport: SluiceTransport): ConsoleClient {
  const api = Object.fromEntries(
    METHODS.map((m) => [m, (args: Args<typeof m>) => transport.call(m, args ?? {})]),
  ) as unknown as SluiceApi;
  return { ...api, onEvents: (l) => transport.onEvents(l), onState: (l) => transport.onState(l) };
}

export type { Args, Method, Results };
