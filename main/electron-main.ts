/**
 * The Electron main process entry: the only file of the shell that touches Electron's objects. It adapts them to
 * the ports of main/core (where everything else lives and is tested on plain Node) and applies the window
 * security baseline. Keep logic out of here: what is not a one-line adaptation belongs in main/core.
 */
import { join } from 'node:path';
import { app, BrowserWindow, dialog, ipcMain, Menu, Notification, protocol, safeStorage, session, shell, Tray } from 'electron';
import { loadUiFiles } from '../src/operator/static-ui.js';
import { runDesktop } from './core/app.js';
import type { CipherPort, LogFn, NotificationPort, TrayPort } from './core/ports.js';
import { answerAppRequest, APP_ORIGIN, APP_SCHEME, guardContents, permissionAllowed, webPreferences } from './core/window-policy.js';

const here = import.meta.dirname; // dist/electron/main
const log: LogFn = (level, msg) => (level === 'info' ? console.log : console.error)(`[sluice] ${msg}`);
// electron-vite dev serves the renderer with hot reload; a packaged app never takes a URL from the environment.
const devServerUrl = !app.isPackaged && process.env.ELECTRON_RENDERER_URL ? process.env.ELECTRON_RENDERER_URL : null;
const appOrigins = devServerUrl ? [APP_ORIGIN, new URL(devServerUrl).origin] : [APP_ORIGIN];

// Standard + secure: the console gets a real origin (ES modules, workers, CSP 'self'), like https, not file://.
protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true, codeCache: true } }]);

app.on('web-contents-created', (_e, contents) => {
  guardContents({
    onWillNavigate: (l) => contents.on('will-navigate', (e) => l(e.url, () => e.preventDefault())),
    onWillRedirect: (l) => contents.on('will-redirect', (e) => l(e.url, () => e.preventDefault())),
    onWillAttachWebview: (l) => contents.on('will-attach-webview', (e) => l(() => e.preventDefault())),
    setWindowOpenHandler: (h) => contents.setWindowOpenHandler(({ url }) => h(url)),
  }, { appOrigins, openExternal: (url) => void shell.openExternal(url), log });
});
// Not quitting when the window closes: the window hides (core/app.ts) and the tray keeps the broker.
app.on('window-all-closed', () => {});
// A signal (logout, `kill`) runs the same quit sequence as the tray's Quit.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => app.quit());

await app.whenReady();

const ui = loadUiFiles(join(here, '..', '..', 'renderer'));
if (!ui) log('warn', 'the operator console is not built (dist/renderer): run `npm run build`');
protocol.handle(APP_SCHEME, (request) => {
  const a = answerAppRequest(request.url, request.method, ui);
  return new Response(typeof a.body === 'string' ? a.body : new Uint8Array(a.body), { status: a.status, headers: a.headers });
});
session.defaultSession.setPermissionRequestHandler((_wc, permission, callback, details) => callback(permissionAllowed(permission, details.requestingUrl, appOrigins)));
session.defaultSession.setPermissionCheckHandler((_wc, permission, requestingOrigin) => permissionAllowed(permission, requestingOrigin, appOrigins));

const notifications: NotificationPort = {
  isSupported: () => Notification.isSupported(),
  actionsSupported: process.platform === 'darwin',
  create(spec) {
    const n = new Notification({ title: spec.title, body: spec.body, timeoutType: 'never', actions: spec.actions.map((text) => ({ type: 'button' as const, text })) });
    return {
      show: () => n.show(),
      close: () => n.close(),
      onAction: (l) => void n.on('action', (_e, index) => l(index)),
      onClick: (l) => void n.on('click', () => l()),
      onClose: (l) => void n.on('close', () => l()),
    };
  },
};

const cipher: CipherPort = {
  // Linux without a keyring falls back to 'basic_text' (a hard-coded key): that is not protection, say so instead.
  isAvailable: () => safeStorage.isEncryptionAvailable()
    && (process.platform !== 'linux' || !['basic_text', 'unknown'].includes(safeStorage.getSelectedStorageBackend())),
  encryptString: (plain) => safeStorage.encryptString(plain),
  decryptString: (encrypted) => safeStorage.decryptString(encrypted),
};

const createTray = (): TrayPort => {
  const tray = new Tray(join(app.getAppPath(), 'assets', process.platform === 'darwin' ? 'trayTemplate.png' : 'tray.png'));
  return {
    setToolTip: (t) => tray.setToolTip(t),
    setTitle: (t) => tray.setTitle(t),
    setMenu: (items) => tray.setContextMenu(Menu.buildFromTemplate(items.map((i) => (i.kind === 'separator'
      ? { type: 'separator' as const }
      : { label: i.label, enabled: i.enabled, ...(i.click ? { click: i.click } : {}) })))),
    onClick: (l) => void tray.on('click', () => l()),
    destroy: () => tray.destroy(),
  };
};

const createWindow = () => {
  const w = new BrowserWindow({
    width: 1280, height: 820, show: false, title: 'Sluice',
    webPreferences: webPreferences(join(here, '..', 'preload', 'index.cjs')),
  });
  return {
    identity: { webContentsId: w.webContents.id, mainFrame: w.webContents.mainFrame },
    contents: { isDestroyed: () => w.isDestroyed(), send: (channel: string, payload: unknown) => w.webContents.send(channel, payload) },
    loadURL: (url: string) => w.loadURL(url),
    show: () => { w.show(); w.focus(); },
    hide: () => w.hide(),
    onClose: (l: (prevent: () => void) => void) => void w.on('close', (e) => l(() => e.preventDefault())),
  };
};

await runDesktop({
  app: {
    requestSingleInstanceLock: () => app.requestSingleInstanceLock(),
    onSecondInstance: (l) => void app.on('second-instance', () => l()),
    onBeforeQuit: (l) => void app.on('before-quit', (e) => l(() => e.preventDefault())),
    quit: () => app.quit(),
    exit: (code) => app.exit(code),
    userDataDir: app.getPath('userData'),
    argv: process.argv,
    showError: (title, message) => dialog.showErrorBox(title, message),
  },
  ipcMain, notifications, createTray, createWindow, cipher, devServerUrl, env: process.env, log,
});
