/** The console window's baseline: what it runs, what it may load, open and ask for. */
import { describe, expect, it } from 'vitest';
import type { UiFiles } from '../../../src/operator/static-ui.js';
import {
  answerAppRequest, CONTENT_SECURITY_POLICY, guardContents, inboxUrl, isAllowedExternal, permissionAllowed, webPreferences,
} from '../../../main/core/window-policy.js';

const ui: UiFiles = {
  root: '/x',
  files: new Map([
    ['/index.html', { body: Buffer.from('<html>'), type: 'text/html; charset=utf-8' }],
    ['/assets/index.js', { body: Buffer.from('js'), type: 'text/javascript; charset=utf-8' }],
  ]),
};

describe('window policy', () => {
  it('webPreferences: isolated, sandboxed, no Node in the page', () => {
    expect(webPreferences('/p.cjs')).toMatchObject({ preload: '/p.cjs', contextIsolation: true, sandbox: true, nodeIntegration: false, webSecurity: true, webviewTag: false });
  });

  it('serves only files of the build, from sluice://app, with the CSP on every answer', () => {
    const ok = answerAppRequest('sluice://app/assets/index.js', 'GET', ui);
    expect(ok).toMatchObject({ status: 200, body: Buffer.from('js') });
    expect(ok.headers['Content-Security-Policy']).toBe(CONTENT_SECURITY_POLICY);
    expect(answerAppRequest('sluice://app/', 'GET', ui).body).toEqual(Buffer.from('<html>'));
    for (const [url, status] of [
      ['sluice://app/../../etc/passwd', 404], ['sluice://app/%2e%2e/%2e%2e/etc/passwd', 404], ['sluice://other/index.html', 404], ['sluice://app/nope.js', 404],
    ] as const) {
      const a = answerAppRequest(url, 'GET', ui);
      expect([url, a.status]).toEqual([url, status]);
      expect(a.headers['Content-Security-Policy']).toBe(CONTENT_SECURITY_POLICY);
    }
    expect(answerAppRequest('sluice://app/index.html', 'POST', ui).status).toBe(405);
    expect(answerAppRequest('sluice://app/index.html', 'GET', null)).toMatchObject({ status: 503, body: expect.stringMatching(/npm run build/) });
  });

  it('the CSP allows no remote source and no inline script', () => {
    expect(CONTENT_SECURITY_POLICY).toMatch(/default-src 'none'/);
    expect(CONTENT_SECURITY_POLICY).toMatch(/script-src 'self'(;|$)/);
    expect(CONTENT_SECURITY_POLICY).not.toMatch(/https?:|\*|unsafe-eval/);
  });

  it('opens externally only allow-listed https URLs', () => {
    expect(isAllowedExternal('https://www.postgresql.org/docs/current/errcodes-appendix.html')).toBe(true);
    for (const url of ['http://www.postgresql.org/', 'https://www.postgresql.org.evil.com/', 'https://user:pw@www.postgresql.org/', 'https://www.postgresql.org:8443/', 'file:///etc/passwd', 'javascript:alert(1)', 'not a url']) {
      expect([url, isAllowedExternal(url)]).toEqual([url, false]);
    }
  });

  it('denies every permission but clipboard writes from our own origin', () => {
    expect(permissionAllowed('clipboard-sanitized-write', 'sluice://app/index.html', ['sluice://app'])).toBe(true);
    expect(permissionAllowed('clipboard-sanitized-write', 'https://evil.example/', ['sluice://app'])).toBe(false);
    for (const p of ['media', 'geolocation', 'notifications', 'openExternal', 'clipboard-read']) expect(permissionAllowed(p, 'sluice://app/', ['sluice://app'])).toBe(false);
  });

  it('guards: navigation away, new windows and webviews are refused; allow-listed links go to the browser', () => {
    const hooks: Record<string, (...a: never[]) => unknown> = {};
    const opened: string[] = [];
    guardContents({
      onWillNavigate: (l) => { hooks.nav = l as never; },
      onWillRedirect: (l) => { hooks.redirect = l as never; },
      onWillAttachWebview: (l) => { hooks.webview = l as never; },
      setWindowOpenHandler: (h) => { hooks.open = h as never; },
    }, { appOrigins: ['sluice://app'], openExternal: (u) => void opened.push(u), log: () => {} });
    const prevented = (hook: string, ...args: unknown[]) => {
      let p = false;
      (hooks[hook] as (...a: unknown[]) => void)(...args, () => { p = true; });
      return p;
    };
    expect(prevented('nav', 'https://evil.example/')).toBe(true);
    expect(prevented('redirect', 'file:///etc/passwd')).toBe(true);
    expect(prevented('nav', inboxUrl('abcd1234'))).toBe(false);
    expect(prevented('webview')).toBe(true);
    expect((hooks.open as (u: string) => unknown)('https://www.postgresql.org/docs/')).toEqual({ action: 'deny' });
    expect((hooks.open as (u: string) => unknown)('https://evil.example/')).toEqual({ action: 'deny' });
    expect(opened).toEqual(['https://www.postgresql.org/docs/']);
  });
});
