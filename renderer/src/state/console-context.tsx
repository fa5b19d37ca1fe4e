import { createContext, useContext, useEffect, useState } from 'react';
import type { SluiceEvent } from '../../../src/contract/api.js';
import type { ConnectionState, ConsoleClient } from '../transport/transport.js';

export const ConsoleContext = createContext<ConsoleClient | null>(null);

export function useClient(): ConsoleClient {
  const c = useContext(ConsoleContext);
  if (!c) throw new Error('useClient outside ConsoleContext');
  return c;
}

export function useConnectionState(): ConnectionState {
  const client = useClient();
  const [state, setState] = useState<ConnectionState>({ kind: 'connecting' });
  useEffect(() => client.onState(setState), [client]);
  return state;
}

/** Calls `listener` with each batch's events of the given types (one React update per batch, not per event). */
export function useEvents<T extends SluiceEvent['type']>(
  types: readonly T[],
  listener: (events: Extract<SluiceEvent, { type: T }>[]) => void,
): void {
  const client = useClient();
  const key = types.join(',');
  useEffect(() => client.onEvents((batch) => {
    const hits = batch.filter((e): e is Extract<SluiceEvent, { type: T }> => (types as readonly string[]).includes(e.type));
    if (hits.length > 0) listener(hits);
  }), [client, key, listener]);
}

/** Loads once (and again when `deps` change); `reload` for a refresh button. */
export function useLoad<T>(load: () => Promise<T>, deps: readonly unknown[]): { data: T | null; error: string | null; reload: () => void } {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    load().then((d) => { if (live) { setData(d); setError(null); } }, (e: Error) => { if (live) setError(e.message); });
    return () => { live = false; };
    // Deliberately keyed on the listed values only (the loader closure is new on every render).
  }, [...deps, n]);
  return { data, error, reload: () => setN((x) => x + 1) };
}
