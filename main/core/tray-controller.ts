/**
 * The tray icon: how many statements wait for an operator, pause (refuse new sessions; open ones carry on) and
 * resume, open the console, quit. The broker keeps running here while the window is closed.
 */
import type { SluiceEvent } from '../../src/contract/api.js';
import type { EventBus } from '../../src/operator/event-bus.js';
import type { TrayMenuItem, TrayPort } from './ports.js';

/** The broker's pause switch (src/broker.ts). */
export interface PauseControl {
  readonly paused: boolean;
  pause(operator: string): void;
  resume(operator: string): void;
}

export interface TrayControllerOptions {
  tray: TrayPort;
  bus: Pick<EventBus, 'on'>;
  pendingCount(): number;
  broker: PauseControl;
  operator: string;
  openInbox(): void;
  openWindow(): void;
  quit(): void;
}

export class TrayController {
  private readonly unsubscribe: () => void;

  constructor(private readonly opts: TrayControllerOptions) {
    this.unsubscribe = opts.bus.on((e) => this.onEvent(e));
    opts.tray.onClick(() => opts.openWindow());
    this.render();
  }

  pause(): void {
    if (!this.opts.broker.paused) this.opts.broker.pause(this.opts.operator);
    this.render();
  }

  resume(): void {
    if (this.opts.broker.paused) this.opts.broker.resume(this.opts.operator);
    this.render();
  }

  close(): void {
    this.unsubscribe();
    this.opts.tray.destroy();
  }

  /** Redraws tooltip, title and menu from the broker's state (not from a count kept here that could drift). */
  render(): void {
    const pending = this.opts.pendingCount();
    const paused = this.opts.broker.paused;
    const waiting = pending === 0 ? 'no approvals waiting' : `${pending} approval${pending === 1 ? '' : 's'} waiting`;
    this.opts.tray.setToolTip(`Sluice: ${waiting}${paused ? ' (paused: new sessions refused)' : ''}`);
    this.opts.tray.setTitle(pending > 0 ? String(pending) : '');
    const items: TrayMenuItem[] = [
      { kind: 'item', label: pending === 0 ? 'No approvals waiting' : `Review ${waiting}…`, enabled: pending > 0, click: () => this.opts.openInbox() },
      { kind: 'separator' },
      paused
        ? { kind: 'item', label: 'Resume (accept new sessions)', enabled: true, click: () => this.resume() }
        : { kind: 'item', label: 'Pause (refuse new sessions)', enabled: true, click: () => this.pause() },
      { kind: 'item', label: 'Open Sluice', enabled: true, click: () => this.opts.openWindow() },
      { kind: 'separator' },
      { kind: 'item', label: 'Quit Sluice (denies waiting approvals)', enabled: true, click: () => this.opts.quit() },
    ];
    this.opts.tray.setMenu(items);
  }

  private onEvent(e: SluiceEvent): void {
    if (e.type === 'approval_requested' || e.type === 'approval_resolved') this.render();
  }
}
