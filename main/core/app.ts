/**
 * The desktop app, wired from injected Electron ports: one instance per user, the broker (the same createBroker as
 * `sluice serve`) in the main process, the console window over IPC, approval popups, the tray, and the quit
 * sequence. The window can be closed: the broker keeps running in the tray until the operator quits.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createBroker, type Broker } from '../../src/broker.js';
import { loadConfig } from '../../src/config/load.js';
import type { SluiceConfig } from '../../src/config/model.js';
import { METHODS } from '../../src/contract/api.js';
import { startDemoDatabase } from '../../src/demo.js';
import { operatorFor } from '../../src/operator/service.js';
import { ApprovalNotifier } from './approval-notifier.js';
import { forwardEvents, isOwnTopFrame, registerContractIpc, type ConsoleWindowIdentity, type EventTarget, type IpcMainPort } from './ipc-bridge.js';
import type { CipherPort, LogFn, NotificationPort, TrayPort } from './ports.js';
import { quitBroker } from './quit.js';
import { SecretVault } from './secret-vault.js';
import { TrayController } from './tray-controller.js';
import { APP_ORIGIN, APP_URL, inboxUrl } from './window-policy.js';

export interface AppPort {
  /** False when another instance holds the lock (then this one must quit). */
  requestSingleInstanceLock(): boolean;
  onSecondInstance(listener: () => void): void;
  /** `prevent` keeps the app running (the quit sequence runs first, then quits for real). */
  onBeforeQuit(listener: (prevent: () => void) => void): void;
  quit(): void;
  exit(code: number): void;
  readonly userDataDir: string;
  readonly argv: readonly string[];
  showError(title: string, message: string): void;
}

export interface WindowPort {
  readonly identity: ConsoleWindowIdentity;
  readonly contents: EventTarget;
  loadURL(url: string): Promise<void>;
  show(): void;
  hide(): void;
  /** `prevent` keeps the window (it is hidden instead). */
  onClose(listener: (prevent: () => void) => void): void;
}

export interface DesktopPorts {
  app: AppPort;
  ipcMain: IpcMainPort;
  notifications: NotificationPort;
  createTray(): TrayPort;
  /** Creates the console window (hidden) with the baseline of window-policy.ts. */
  createWindow(): WindowPort;
  /** safeStorage; null where Electron offers none. */
  cipher: CipherPort | null;
  /** The Vite dev server's URL in `electron-vite dev`, else null (the build is served on sluice://app). */
  devServerUrl: string | null;
  env: NodeJS.ProcessEnv;
  log: LogFn;
}

export interface RunningDesktop {
  broker: Broker;
  quit(): Promise<void>;
}

/** --config FILE, then $SLUICE_CONFIG, then sluice.yaml in the app's data folder; none: the embedded demo. */
export function desktopConfigPath(argv: readonly string[], env: NodeJS.ProcessEnv, userDataDir: string): string | undefined {
  const i = argv.findIndex((a) => a === '--config' || a.startsWith('--config='));
  if (i >= 0) {
    const a = argv[i]!;
    const value = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[i + 1];
    if (value) return resolve(value);
  }
  if (env.SLUICE_CONFIG) return resolve(env.SLUICE_CONFIG);
  const own = join(userDataDir, 'sluice.yaml');
  return existsSync(own) ? own : undefined;
}

export async function runDesktop(ports: DesktopPorts): Promise<RunningDesktop | null> {
  const { app, log } = ports;
  if (!app.requestSingleInstanceLock()) {
    log('info', 'Sluice is already running: showing its window instead');
    app.quit();
    return null;
  }
  const caller = operatorFor('desktop app');
  const path = desktopConfigPath(app.argv, ports.env, app.userDataDir);
  let config: SluiceConfig;
  let stopDemo: (() => Promise<void>) | undefined;
  try {
    if (path) {
      config = loadConfig(path);
    } else {
      const demo = await startDemoDatabase({ dataDir: join(app.userDataDir, 'demo'), listenPort: 6432 });
      config = demo.config;
      stopDemo = demo.stop;
    }
  } catch (err) {
    return fail(ports, 'Sluice cannot start', (err as Error).message);
  }
  let broker: Broker;
  try {
    const vault = new SecretVault(config.dataDir, ports.cipher, log);
    broker = createBroker(config, {
      log, env: ports.env, ...(path ? { configPath: path } : { demo: true }),
      secrets: { targetPassword: (t) => vault.targetPassword(t, ports.env) },
    });
  } catch (err) {
    await stopDemo?.();
    return fail(ports, 'Sluice cannot open its data', (err as Error).message);
  }
  try {
    const addr = await broker.listen();
    log('info', `listening on ${addr.host}:${addr.port} (targets: ${config.targets.map((t) => t.name).join(', ')}; data: ${config.dataDir})`);
  } catch (err) {
    await broker.close();
    await stopDemo?.();
    return fail(ports, 'Sluice cannot listen', `${config.listen.host}:${config.listen.port}: ${(err as Error).message}`);
  }

  const origins = ports.devServerUrl ? [APP_ORIGIN, new URL(ports.devServerUrl).origin] : [APP_ORIGIN];
  let window: WindowPort | null = null;
  let quitting = false;
  const openWindow = (url?: string): void => {
    if (!window) {
      const w = ports.createWindow();
      window = w;
      w.onClose((prevent) => {
        if (quitting) return;
        // Closing the window is not quitting: the broker keeps running (and asking) from the tray.
        prevent();
        w.hide();
      });
      void w.loadURL(url ?? ports.devServerUrl ?? APP_URL).then(() => w.show(), (err: Error) => log('error', `console window: ${err.message}`));
      return;
    }
    if (url) void window.loadURL(url).catch((err: Error) => log('error', `console window: ${err.message}`));
    window.show();
  };
  const openInbox = (approvalId?: string) => openWindow(ports.devServerUrl ? undefined : inboxUrl(approvalId));

  const unregister = registerContractIpc({
    ipcMain: ports.ipcMain, handlers: broker.contract, methods: METHODS, caller, log,
    isTrustedSender: (event) => isOwnTopFrame(event, window?.identity ?? null, origins),
  });
  const stopEvents = forwardEvents(broker.events, () => window?.contents ?? null);
  const notifier = new ApprovalNotifier({ bus: broker.events, handlers: broker.contract, notifications: ports.notifications, caller, openInbox, log });
  const tray = new TrayController({
    tray: ports.createTray(), bus: broker.events, pendingCount: () => broker.approvals.size, broker, operator: caller.operator,
    openInbox: () => openInbox(), openWindow: () => openWindow(), quit: () => app.quit(),
  });
  app.onSecondInstance(() => openWindow());

  let quitDone: Promise<void> | null = null;
  const quit = (): Promise<void> => {
    quitDone ??= (async () => {
      quitting = true;
      notifier.close();
      tray.close();
      stopEvents();
      unregister();
      await quitBroker(broker, caller, log);
      await stopDemo?.();
    })();
    return quitDone;
  };
  let finished = false;
  app.onBeforeQuit((prevent) => {
    if (finished) return; // the second pass, after the sequence: let Electron quit
    prevent();
    if (quitDone) return; // already running; it quits when done
    quit().then(() => { finished = true; app.quit(); }, (err: Error) => {
      log('error', `quit: ${err.stack ?? err.message}`);
      app.exit(1);
    });
  });
  openWindow();
  return { broker, quit };
}

function fail(ports: DesktopPorts, title: string, message: string): null {
  ports.log('error', `${title}: ${message}`);
  ports.app.showError(title, message);
  ports.app.exit(1);
  return null;
}
