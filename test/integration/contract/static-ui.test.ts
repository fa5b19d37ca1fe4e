import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contentSecurityPolicy } from '../../../src/operator/static-ui.js';
import { serveSluice, type ServedSluice } from './helpers.js';

let ui: string;
let s: ServedSluice;
let bare: ServedSluice;

beforeAll(async () => {
  // A stand-in build: the server must serve whatever the Vite build holds, and nothing else.
  ui = mkdtempSync(join(tmpdir(), 'sluice-ui-'));
  mkdirSync(join(ui, 'assets'));
  writeFileSync(join(ui, 'index.html'), '<!doctype html><title>console</title>');
  writeFileSync(join(ui, 'assets', 'index-abc123.js'), 'console.log(1)');
  writeFileSync(join(ui, 'assets', 'notes.md'), 'not a served type');
  s = await serveSluice(undefined, { uiRoot: ui });
  bare = await serveSluice(undefined, { uiRoot: join(ui, 'missing') });
});

afterAll(async () => {
  await s?.close();
  await bare?.close();
  rmSync(ui, { recursive: true, force: true });
});

interface Answer { status: number; headers: Record<string, string | string[] | undefined>; body: string }

function get(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers: { Host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('sluice serve: the built console on the operator origin', () => {
  it('serves index.html uncached, with a CSP that allows nothing remote', async () => {
    const r = await get(s.api.port, '/');
    expect(r.status).toBe(200);
    expect(r.body).toContain('<title>console</title>');
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers['cache-control']).toBe('no-store');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['x-frame-options']).toBe('DENY');
    const csp = String(r.headers['content-security-policy']);
    expect(csp).toBe(contentSecurityPolicy(s.api.port));
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain(`connect-src ws://127.0.0.1:${s.api.port}`);
    // No scheme or host other than our own origin appears anywhere in the policy.
    expect(csp.replace(`ws://127.0.0.1:${s.api.port}`, '')).not.toMatch(/https?:|wss?:|\*|blob:/);
  });

  it('serves hashed assets with their type and the same headers', async () => {
    const r = await get(s.api.port, '/assets/index-abc123.js');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(r.headers['content-security-policy']).toBeDefined();
    expect(r.headers['cache-control']).toContain('immutable');
  });

  it('answers 404 for anything not in the build, including traversal and unknown file types', async () => {
    for (const path of ['/nope.js', '/../package.json', '/assets/../../package.json', '/%2e%2e/%2e%2e/etc/passwd', '/assets/notes.md', '/index.html/']) {
      expect([path, (await get(s.api.port, path)).status]).toEqual([path, 404]);
    }
  });

  it('refuses other origins, other hosts (DNS rebinding), cross-site fetches and other methods', async () => {
    expect((await get(s.api.port, '/', { Origin: 'http://evil.example' })).status).toBe(403);
    expect((await get(s.api.port, '/', { Origin: `http://localhost:${s.api.port}` })).status).toBe(403);
    expect((await get(s.api.port, '/', { Host: `evil.example:${s.api.port}` })).status).toBe(403);
    expect((await get(s.api.port, '/', { 'Sec-Fetch-Site': 'cross-site' })).status).toBe(403);
    expect((await get(s.api.port, '/', {}, 'POST')).status).toBe(405);
    expect((await get(s.api.port, '/', { Origin: `http://127.0.0.1:${s.api.port}`, 'Sec-Fetch-Site': 'same-origin' })).status).toBe(200);
  });

  it('says how to build the console when there is no build, and the API still works', async () => {
    const r = await get(bare.api.port, '/');
    expect(r.status).toBe(404);
    expect(r.body).toContain('npm run build');
    expect(bare.api.uiAvailable).toBe(false);
  });

  it('puts the token in the URL fragment only', () => {
    expect(s.api.consoleUrl).toBe(`http://127.0.0.1:${s.api.port}/#token=${s.api.token}`);
  });
});
