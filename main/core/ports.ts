/**
 * The Electron APIs the shell uses, as narrow interfaces. Everything in main/core takes these as arguments, so it
 * runs and is tested on plain Node; only main/electron-main.ts imports electron and adapts the real objects.
 */

export type LogFn = (level: 'info' | 'warn' | 'error', msg: string) => void;

/** Electron's Notification, as created by the adapter. */
export interface NotificationHandle {
  show(): void;
  close(): void;
  onAction(listener: (index: number) => void): void;
  onClick(listener: () => void): void;
  onClose(listener: () => void): void;
}

export interface NotificationSpec {
  title: string;
  body: string;
  /** Button labels; shown only where the platform supports actions (macOS). */
  actions: string[];
}

export interface NotificationPort {
  isSupported(): boolean;
  /** Whether notification buttons work here (Electron supports them on macOS; elsewhere a click is all there is). */
  readonly actionsSupported: boolean;
  create(spec: NotificationSpec): NotificationHandle;
}

export type TrayMenuItem =
  | { kind: 'item'; label: string; enabled: boolean; click?: () => void }
  | { kind: 'separator' };

export interface TrayPort {
  setToolTip(text: string): void;
  /** Text beside the icon (macOS menu bar); a no-op elsewhere. */
  setTitle(text: string): void;
  setMenu(items: TrayMenuItem[]): void;
  onClick(listener: () => void): void;
  destroy(): void;
}

/** Electron's safeStorage, reduced to what the vault needs. */
export interface CipherPort {
  /**
   * True only when secrets are encrypted with a key the OS protects (Keychain, DPAPI, Secret Service/KWallet).
   * Linux's 'basic_text' fallback (a hard-coded key) does not count.
   */
  isAvailable(): boolean;
  encryptString(plain: string): Buffer;
  decryptString(encrypted: Buffer): string;
}
