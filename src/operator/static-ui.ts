/**
 * Serves the built operator console (renderer/, Vite output in dist/renderer) on the operator API's own loopback
 * origin. The files are read once at start into memory: only paths that exist in the build can be answered, so
 * there is nothing to traverse. Every answer carries a strict Content-Security-Policy: the page may load code
 * only from this origin and talk only to this origin's WebSocket; no remote resource of any kind.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, extname, join, relative, sep } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ttf': 'font/ttf',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

export interface UiFiles {
  root: string;
  files: Map<string, { body: Buffer; type: string }>;
}

/** The Vite build of renderer/: dist/renderer from the package root (src/ or dist/src/ alike). */
export function defaultUiRoot(): string {
  let dir = import.meta.dirname;
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return join(dir, 'dist', 'renderer');
}

/** Null when there is no build (then the API still runs and `/` says how to build the console). */
export function loadUiFiles(root: string): UiFiles | null {
  if (!existsSync(join(root, 'index.html'))) return null;
  const files = new Map<string, { body: Buffer; type: string }>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) { walk(p); continue; }
      const type = TYPES[extname(name)];
      if (type) files.set(`/${relative(root, p).split(sep).join('/')}`, { body: readFileSync(p), type });
    }
  };
  walk(root);
  return { root, files };
}

/**
 * 'unsafe-inline' for styles only: Monaco and React set element styles (positions, sizes) at run time, which a
 * style-src without it blocks; styles cannot run code. Scripts and workers come only from this origin (Monaco's
 * workers are bundled files, not blob: URLs).
 */
export function contentSecurityPolicy(port: number): string {
  return consolePolicy(`ws://127.0.0.1:${port}`);
}

/**
 * The console's policy wherever it is served (here, and the desktop shell's custom protocol); only where it may
 * connect differs: the WebSocket here, nothing beyond its own origin in the shell (it talks through the preload).
 */
export function consolePolicy(connectSrc: string): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "worker-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    `connect-src ${connectSrc}`,
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

export function uiHeaders(port: number): Record<string, string> {
  return {
    'Content-Security-Policy': contentSecurityPolicy(port),
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
  };
}

/** Why an HTTP request is refused, or null. The same origin rules as the WebSocket (ws-server.ts checkHandshake). */
export function checkHttpRequest(req: IncomingMessage, port: number): { status: number; text: string } | null {
  if (req.method !== 'GET' && req.method !== 'HEAD') return { status: 405, text: 'method not allowed' };
  const host = req.headers.host;
  if (host !== `127.0.0.1:${port}` && host !== `localhost:${port}`) return { status: 403, text: 'unexpected Host header' };
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== `http://127.0.0.1:${port}`) return { status: 403, text: 'origin not allowed' };
  // A page elsewhere must not even load our scripts (they would run under its origin without the token, but still).
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return { status: 403, text: 'cross-site request refused' };
  return null;
}

export function serveUi(ui: UiFiles | null, port: number, req: IncomingMessage, res: ServerResponse): void {
  const headers = uiHeaders(port);
  const refusal = checkHttpRequest(req, port);
  const text = (status: number, body: string) => {
    res.writeHead(status, { ...headers, 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : `${body}\n`);
  };
  if (refusal) return text(refusal.status, refusal.text);
  let path = (req.url ?? '/').split(/[?#]/, 1)[0]!;
  if (path === '/') path = '/index.html';
  if (!ui) return text(404, 'the operator console is not built: run `npm run build` (it builds renderer/ into dist/renderer)');
  const file = ui.files.get(path);
  if (!file) return text(404, 'not found');
  res.writeHead(200, {
    ...headers,
    'Content-Type': file.type,
    'Content-Length': String(file.body.length),
    // index.html names the current bundles: never cached. Bundles have content hashes in their names.
    'Cache-Control': path === '/index.html' ? 'no-store' : path.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
  });
  res.end(req.method === 'HEAD' ? undefined : file.body);
}
