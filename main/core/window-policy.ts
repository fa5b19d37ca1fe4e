/**
 * The console window's security baseline (Electron's security checklist): what the window may run, load, open and
 * ask for. Pure decisions and a guard installer over injected ports; electron-main.ts applies them.
 */
import { extname } from 'node:path';
import { consolePolicy, type UiFiles } from '../../src/operator/static-ui.js';
import { originOf } from './ipc-bridge.js';

/** The console is served from this privileged scheme, never from file:// (which would reach every local file). */
export const APP_SCHEME = 'sluice';
export const APP_ORIGIN = `${APP_SCHEME}://app`;
export const APP_URL = `${APP_ORIGIN}/index.html`;
/**
 * Where a click on an approval popup takes the console: the renderer's router reads the hash
 * (`#/inbox/<id>`); loading it into the open page is a same-document navigation.
 */
export function inboxUrl(approvalId?: string): string {
  return `${APP_URL}#/inbox${approvalId ? `/${encodeURIComponent(approvalId)}` : ''}`;
}

export function webPreferences(preloadPath: string) {
  return {
    preload: preloadPath,
    contextIsolation: true,
    sandbox: true,
    nodeIntegration: false,
    nodeIntegrationInWorker: false,
    nodeIntegrationInSubFrames: false,
    webSecurity: true,
    allowRunningInsecureContent: false,
    experimentalFeatures: false,
    webviewTag: false,
    navigateOnDragDrop: false,
    safeDialogs: true,
    spellcheck: false,
  } as const;
}

/**
 * No remote source of any kind; scripts, workers (Monaco) and fonts from the app's own origin only. Styles allow
 * 'unsafe-inline' because React and Monaco set element styles at run time; styles cannot run code. No
 * connect-src beyond 'self': the console talks to the core through the preload, not the network.
 */
export const CONTENT_SECURITY_POLICY = consolePolicy("'self'");

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

export interface ProtocolAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer | string;
}

const NOT_BUILT = 'The operator console is not built: run `npm run build`, then start Sluice again.';

/**
 * The answer to a request on sluice://: a file of the renderer build (read into memory at start, so only paths
 * that exist in the build can be answered: nothing to traverse), with the CSP on every answer.
 */
export function answerAppRequest(url: string, method: string, ui: UiFiles | null): ProtocolAnswer {
  const text = (status: number, body: string): ProtocolAnswer => ({
    status, body, headers: { ...SECURITY_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' },
  });
  if (method !== 'GET' && method !== 'HEAD') return text(405, 'method not allowed');
  let path: string;
  try {
    const u = new URL(url);
    if (`${u.protocol}//${u.host}` !== APP_ORIGIN) return text(404, 'not found');
    path = decodeURIComponent(u.pathname);
  } catch {
    return text(400, 'bad request');
  }
  if (!ui) return text(503, NOT_BUILT);
  const file = ui.files.get(path === '/' ? '/index.html' : path);
  if (!file) return text(404, 'not found');
  return {
    status: 200,
    body: method === 'HEAD' ? '' : file.body,
    headers: { ...SECURITY_HEADERS, 'Content-Type': file.type, 'Cache-Control': extname(path) === '.html' || path === '/' ? 'no-store' : 'no-cache' },
  };
}

/** Hosts `shell.openExternal` may open (https only): documentation the console links to. */
export const EXTERNAL_ALLOWLIST: readonly string[] = ['www.postgresql.org', 'github.com'];

/** True for https://<allow-listed host>/... with no credentials and the default port. */
export function isAllowedExternal(url: string, allowlist: readonly string[] = EXTERNAL_ALLOWLIST): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  return u.protocol === 'https:' && u.username === '' && u.password === '' && u.port === '' && allowlist.includes(u.hostname);
}

/** The permission the console may hold: writing to the clipboard (the "copy" of a new agent key). */
const ALLOWED_PERMISSIONS: readonly string[] = ['clipboard-sanitized-write'];

export function permissionAllowed(permission: string, requestingUrl: string, appOrigins: readonly string[]): boolean {
  return ALLOWED_PERMISSIONS.includes(permission) && appOrigins.includes(originOf(requestingUrl));
}

/** The bits of WebContents the guards hook into. */
export interface GuardedContents {
  onWillNavigate(listener: (url: string, prevent: () => void) => void): void;
  onWillRedirect(listener: (url: string, prevent: () => void) => void): void;
  onWillAttachWebview(listener: (prevent: () => void) => void): void;
  setWindowOpenHandler(handler: (url: string) => { action: 'deny' }): void;
}

export interface GuardOptions {
  appOrigins: readonly string[];
  openExternal(url: string): void;
  log(level: 'warn', msg: string): void;
}

/**
 * Navigation: only within our own origin (a reload); anything else is refused. New windows: never; an allow-listed
 * https link opens in the system browser instead. <webview>: never.
 */
export function guardContents(contents: GuardedContents, opts: GuardOptions): void {
  const stayHome = (kind: string) => (url: string, prevent: () => void) => {
    if (opts.appOrigins.includes(originOf(url))) return;
    prevent();
    opts.log('warn', `refused ${kind} to ${url}`);
  };
  contents.onWillNavigate(stayHome('navigation'));
  contents.onWillRedirect(stayHome('redirect'));
  contents.onWillAttachWebview((prevent) => {
    prevent();
    opts.log('warn', 'refused a <webview>');
  });
  contents.setWindowOpenHandler((url) => {
    if (isAllowedExternal(url)) opts.openExternal(url);
    else opts.log('warn', `refused to open ${url}`);
    return { action: 'deny' };
  });
}
