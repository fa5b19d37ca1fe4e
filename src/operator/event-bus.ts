import type { SluiceEvent } from '../contract/api.js';

export type EventListener = (event: SluiceEvent) => void;

/**
 * The broker's contract events, fanned out to every subscriber (WebSocket clients, the Electron window). Emitting
 * happens on the proxy's hot path, so a listener must be cheap; one that throws is reported and the others still
 * hear the event.
 */
export class EventBus {
  private readonly listeners = new Set<EventListener>();

  constructor(private readonly onError: (message: string) => void = () => {}) {}

  /** Returns the unsubscribe function. */
  on(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Lets producers skip building events nobody listens to. */
  get active(): boolean {
    return this.listeners.size > 0;
  }

  emit(event: SluiceEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        this.onError(`event listener failed on ${event.type}: ${(err as Error).message}`);
      }
    }
  }
}
