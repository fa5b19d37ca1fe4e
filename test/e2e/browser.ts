import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const SCREENSHOTS = join(import.meta.dirname, 'screenshots');
const CHROMIUM = process.env.SLUICE_CHROMIUM ?? '/usr/bin/chromium';

export interface TestBrowser {
  browser: Browser;
  context: BrowserContext;
  page: Page;
  /** Messages the page logged as errors, and CSP violations: a test asserts there are none. */
  problems: string[];
  shot(name: string): Promise<void>;
  close(): Promise<void>;
}

/** Debian's Chromium, headless; launch() gives it a fresh temporary profile. Never a downloaded browser. */
export async function openBrowser(): Promise<TestBrowser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run'],
  });
  const context = await browser.newContext({ viewport: { width: 1360, height: 860 }, acceptDownloads: true });
  // The rules test pastes into Monaco, as an operator would.
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`); });
  mkdirSync(SCREENSHOTS, { recursive: true });
  return {
    browser, context, page, problems,
    shot: async (name) => { await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) }); },
    async close() {
      await browser.close();
    },
  };
}
