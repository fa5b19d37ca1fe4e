/**
 * The operator console end to end: a real PostgreSQL, the broker and operator server as `sluice serve` runs them,
 * the built renderer in Debian's Chromium, and real psql clients. Screenshots of every screen land in
 * test/e2e/screenshots/ (linked from the README).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { SessionSummary, StatementSummary } from '../../src/contract/api.js';
import { dispatch } from '../../src/operator/service.js';
import { startPostgres, type PgCluster } from '../harness/postgres.js';
import { openBrowser, SCREENSHOTS, type TestBrowser } from './browser.js';
import { psql, serveConsole, type ConsoleSluice } from './serve.js';
import { ensureUiBuilt } from './ui-build.js';

let cluster: PgCluster;
let s: ConsoleSluice;
let b: TestBrowser;
let page: Page;
let clusterStopped = false;

beforeAll(async () => {
  const uiRoot = ensureUiBuilt();
  cluster = await startPostgres();
  await cluster.sql(`CREATE TABLE orders (id int PRIMARY KEY, status text);
    INSERT INTO orders SELECT g, 'open' FROM generate_series(1, 50) g; ALTER TABLE orders OWNER TO app; ANALYZE orders;`, 'app');
  s = await serveConsole(cluster, uiRoot);
  b = await openBrowser();
  page = b.page;
}, 240_000);

afterAll(async () => {
  await b?.close();
  await s?.close();
  if (!clusterStopped) await cluster?.stop();
});

const tab = (name: string) => page.click(`[data-tab=${name}]`);
const call = <T>(method: string, args: unknown = {}) => dispatch(s.broker.contract, method, args, { operator: 'e2e' }) as Promise<T>;

describe.sequential('operator console (Chromium, real PostgreSQL, psql)', () => {
  it('is served with a strict CSP, drops the token from the address bar, and shows a newcomer the psql line', async () => {
    const res = await page.goto(s.api.consoleUrl);
    const headers = res!.headers();
    expect(headers['content-security-policy']).toContain("default-src 'none'");
    expect(headers['content-security-policy']).toContain("script-src 'self'");
    expect(headers['cache-control']).toBe('no-store');
    expect(headers['x-content-type-options']).toBe('nosniff');
    const line = page.getByTestId('psql-line');
    await line.waitFor();
    expect(await line.textContent()).toBe(`PGPASSWORD=<the agent key> psql "host=127.0.0.1 port=${s.proxyPort} user=agent dbname=app sslmode=disable"`);
    expect(page.url()).not.toContain('token=');
    await expect.poll(() => page.getByTestId('connection').textContent()).toBe('connected');
    await b.shot('welcome');
  });

  it("shows a psql client's statement in the live feed", async () => {
    await tab('feed');
    const r = await psql(s, "SELECT 'feed-marker-42' AS marker");
    expect(r.stdout.trim()).toBe('feed-marker-42');
    const row = page.getByTestId('feed-row').filter({ hasText: 'feed-marker-42' });
    await row.waitFor();
    const text = await row.textContent();
    expect(text).toContain('agent');
    expect(text).toContain('allow');
  });

  it('keeps the feed virtualised through a burst of 3,000 statements, refusals included', async () => {
    const script = join(mkdtempSync(join(tmpdir(), 'sluice-e2e-burst-')), 'burst.sql');
    writeFileSync(script, Array.from({ length: 3000 }, (_, i) => (i % 500 === 499 ? "SELECT pg_read_file('/etc/hostname');" : `SELECT ${i} AS burst;`)).join('\n'));
    const r = await psql(s, '', { file: script });
    expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(2994);
    await expect.poll(() => page.getByTestId('feed-count').textContent(), { timeout: 20_000 }).toBe('3,001 shown');
    // Only the rows in view are in the DOM.
    expect(await page.getByTestId('feed-row').count()).toBeLessThan(80);
    await page.getByLabel('decision').selectOption('deny');
    await expect.poll(() => page.getByTestId('feed-count').textContent()).toBe('6 shown');
    await page.getByLabel('decision').selectOption('');
    await b.shot('feed');
  });

  it('holds a review statement in the inbox; the keyboard approves it and the client gets its rows', async () => {
    await tab('inbox');
    const client = psql(s, "UPDATE orders SET status = 'shipped' WHERE id = 1 RETURNING id, status");
    const card = page.getByTestId('approval').filter({ hasText: 'UPDATE orders' });
    await card.waitFor();
    expect(await card.textContent()).toContain('write');
    await expect.poll(() => card.getByTestId('impact').textContent(), { timeout: 10_000 }).toContain('row(s) update');
    await b.shot('inbox');
    // A second window shows the same card, and sees it go when the first one decides.
    const other = await b.context.newPage();
    await other.goto(s.api.consoleUrl.replace('/#token=', '/#/inbox&token='));
    await other.getByTestId('approval').filter({ hasText: 'UPDATE orders' }).waitFor();
    expect(other.url()).toMatch(/\/#\/inbox$/);
    await page.keyboard.press('j');
    await page.keyboard.press('a');
    const r = await client;
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('1|shipped');
    await page.getByTestId('inbox-empty').waitFor();
    await other.getByTestId('inbox-empty').waitFor();
    await other.close();
  });

  it("denies with a reason typed after d, and the client reads that reason", async () => {
    const client = psql(s, 'DELETE FROM orders WHERE id = 2');
    await page.getByTestId('approval').filter({ hasText: 'DELETE FROM orders' }).waitFor();
    await page.keyboard.press('d');
    await page.getByTestId('deny-reason').fill('no deletes during the audit');
    await page.keyboard.press('Enter');
    const r = await client;
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('no deletes during the audit');
    expect((await psql(s, 'SELECT count(*) FROM orders')).stdout.trim()).toBe('50');
  });

  it('refuses an invalid rule with its reason, then applies an edited rule to the next query after a diff', async () => {
    await tab('rules');
    await page.getByTestId('rules-editor').locator('.view-lines').waitFor();
    await replaceEditorText(page, 'policy:\n  rules:\n    - name: agents\n      match: { groups: [test] }\n      allow: [reed, session]\n');
    const problems = page.getByTestId('rules-problems');
    await problems.waitFor();
    expect(await problems.textContent()).toMatch(/line 5:\d+ .*allow.*must be one of read, write/);
    await b.shot('rules-invalid');
    expect(await page.getByTestId('review-save').isEnabled()).toBe(true);

    const denyReads = 'policy:\n  rules:\n    - name: agents\n      match: { groups: [test] }\n      allow: [session, transaction, utility]\n      review: [write]\n      deny: [read]\n';
    await replaceEditorText(page, denyReads);
    await expect.poll(() => problems.count()).toBe(0);
    await page.getByTestId('review-save').click();
    const diff = page.getByTestId('rules-diff');
    await expect.poll(() => diff.isVisible()).toBe(true);
    // The diff shows the running version and the edit side by side.
    await expect.poll(async () => (await diff.textContent())?.replace(/\u00a0/g, ' ')).toMatch(/allow: \[read, session.*deny: \[read\]/s);
    await b.shot('rules-diff');
    await page.getByTestId('apply').click();
    await expect.poll(() => page.getByTestId('rules-status').textContent()).toContain('Saved');
    expect(readFileSync(s.configFile, 'utf8')).toContain('deny: [read]');

    const r = await psql(s, 'SELECT count(*) FROM orders');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/agents/);

    await page.getByLabel('try identity').fill('agent');
    await page.getByLabel('try sql').fill('SELECT id FROM orders');
    await page.getByRole('button', { name: 'Decide' }).click();
    const tried = page.getByTestId('try-result');
    await tried.waitFor();
    expect(await tried.textContent()).toContain('deny');
    expect(await tried.textContent()).toContain('r:public.orders');
  });

  it('masks the next query after a masking rule is added in the editor', async () => {
    const withMasking = 'policy:\n  rules:\n    - name: agents\n      match: { groups: [test] }\n      allow: [read, session, transaction, utility]\n      review: [write]\n'
      + 'masking:\n  rules:\n    - name: order-status\n      columns: [public.orders.status]\n      method: redact\n';
    // Reads are denied by the previous edit; this one allows them again and masks orders.status (stored: 'open').
    await replaceEditorText(page, withMasking);
    await expect.poll(() => page.getByTestId('rules-problems').count()).toBe(0);
    await page.getByTestId('review-save').click();
    await page.getByTestId('apply').click();
    await expect.poll(() => page.getByTestId('rules-status').textContent()).toContain('Saved');
    const r = await psql(s, 'SELECT id, status FROM orders WHERE id = 3');
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('3|***');

    // "Try it" names the masked columns as the proxy resolves them, from the target's catalog.
    await page.getByLabel('try sql').fill('SELECT id, status FROM orders');
    await page.getByRole('button', { name: 'Decide' }).click();
    await expect.poll(() => page.getByTestId('try-masked').textContent()).toBe('public.orders.status');
    expect(await page.getByTestId('try-result').textContent()).toContain('allow');
    await b.shot('rules');
  });

  it('creates an agent key and shows its secret once', async () => {
    await tab('identities');
    await page.getByLabel('key name').fill('ci-bot');
    await page.getByLabel('groups').fill('ci');
    await page.getByRole('button', { name: 'Create key' }).click();
    const secret = page.getByTestId('secret');
    await secret.waitFor();
    const shown = (await secret.locator('pre').textContent())!.trim();
    expect(shown.length).toBeGreaterThan(20);
    expect(s.broker.keys.list().some((k) => k.name === 'ci-bot' && k.groups.includes('ci'))).toBe(true);
    await page.getByTestId('review').waitFor();
    await b.page.screenshot({ path: join(SCREENSHOTS, 'identities.png'), mask: [secret.locator('pre')] });
  });

  it('shows each target as reachable with its server version', async () => {
    await tab('targets');
    await expect.poll(() => page.getByTestId('target-app').textContent(), { timeout: 10_000 }).toContain('reachable');
    expect(await page.getByTestId('targets').textContent()).toMatch(/15\.\d+/);
    await b.shot('targets');
  });

  it('replays a recorded session with the database stopped', async () => {
    await cluster.stop();
    clusterStopped = true;
    const sessions = await call<SessionSummary[]>('listSessions');
    let approved: SessionSummary | undefined;
    for (const sess of sessions) {
      const st = await call<StatementSummary[]>('listStatements', { sessionId: sess.id });
      if (st.some((x) => x.text.startsWith('UPDATE orders'))) approved = sess;
    }
    expect(approved).toBeDefined();
    await tab('sessions');
    await page.getByTestId('session-item').filter({ hasText: `#${approved!.id} ` }).click();
    const detail = page.getByTestId('replay-statement');
    await detail.waitFor();
    // Step through to the UPDATE: the client saw one row.
    for (let i = 0; i < 20 && !(await detail.textContent())?.includes('UPDATE orders'); i++) await page.getByTestId('step').click();
    expect(await detail.textContent()).toContain('UPDATE orders');
    expect(await page.getByTestId('replay-rows').textContent()).toMatch(/^1\b/);
    await expect.poll(() => page.getByTestId('chain').textContent()).toContain('verifies');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export').click()]);
    const jsonl = readFileSync((await download.path())!, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; text?: string; session: { id: number } | null });
    expect(jsonl.some((l) => l.type === 'statement' && l.text?.startsWith('UPDATE orders'))).toBe(true);
    expect(jsonl.every((l) => l.session?.id === approved!.id)).toBe(true);
    await b.shot('sessions-replay');

    await tab('targets');
    await expect.poll(() => page.getByTestId('target-app').textContent(), { timeout: 15_000 }).toContain('unreachable');
    await b.shot('targets-database-stopped');
  });

  it('ran without Content-Security-Policy violations or page errors', () => {
    expect(b.problems.filter((p) => !/WebSocket|ERR_CONNECTION/.test(p))).toEqual([]);
  });
});

/**
 * Replaces Monaco's whole text the way an operator pasting rules does (typing would let auto-indent re-indent
 * every YAML line).
 */
async function replaceEditorText(page: Page, text: string): Promise<void> {
  const lines = page.getByTestId('rules-editor').locator('.view-lines');
  await lines.click();
  await page.keyboard.press('Control+A');
  // A string, evaluated in the page: this file is compiled without the DOM library.
  await page.evaluate(`navigator.clipboard.writeText(${JSON.stringify(text)})`);
  await page.keyboard.press('Control+V');
  const last = text.trim().split('\n').at(-1)!.trim();
  await expect.poll(async () => (await lines.textContent())?.replace(/\u00a0/g, ' ')).toContain(last);
}
