/**
 * The live feed under load (issue: operator console, "smooth at 2,000 statements/s"): the built console in Debian's
 * Chromium, fed 2,000 statement_decided (and as many statement_completed) events per second through the broker's
 * real event bus and WebSocket, for 10 s. Reports the page's frame gaps (requestAnimationFrame) and how many rows
 * the feed counted. Prints numbers; asserts nothing.
 *
 *   npm run build && node dist/bench/ui-feed.js [--rate 2000] [--seconds 10]
 */
import { parseArgs } from 'node:util';
import type { SluiceEvent } from '../src/contract/api.js';
import type { PgCluster } from '../test/harness/postgres.js';
import { openBrowser } from '../test/e2e/browser.js';
import { serveConsole } from '../test/e2e/serve.js';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const { values: args } = parseArgs({ options: { rate: { type: 'string', default: '2000' }, seconds: { type: 'string', default: '10' } } });
const RATE = Number(args.rate);
const SECONDS = Number(args.seconds);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

async function main(): Promise<void> {
  // dist/bench/ui-feed.js -> the repo's dist/renderer, built by `npm run build` (which `npm run bench` runs).
  const ui = join(dirname(fileURLToPath(import.meta.url)), '..', 'renderer');
  if (!existsSync(join(ui, 'index.html'))) throw new Error(`no built console at ${ui}: run npm run build`);
  // No statement reaches a database here: the events are fed to the bus directly, so the target is never dialled.
  const noDb = { port: 1, roles: { app: { password: 'unused' } } } as unknown as PgCluster;
  const s = await serveConsole(noDb, ui);
  const b = await openBrowser();
  try {
    await b.page.goto(s.api.consoleUrl);
    await b.page.click('[data-tab=feed]');
    // Page code as a string: this file is compiled without the DOM's types.
    await b.page.evaluate(`(() => {
      window.__gaps = [];
      let last = performance.now();
      const tick = (t) => { window.__gaps.push(t - last); last = t; requestAnimationFrame(tick); };
      requestAnimationFrame(tick);
    })()`);
    const perTick = RATE / 100; // every 10 ms
    let id = 1;
    const t0 = Date.now();
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const now = Date.now();
        for (let i = 0; i < perTick; i++, id++) {
          const decided: SluiceEvent = {
            type: 'statement_decided', at: now,
            statement: {
              id, sessionId: 1 + (id % 16), identity: `agent-${id % 16}`, target: 'app', receivedAt: now, protocol: 'execute',
              text: `SELECT abalance FROM pgbench_accounts WHERE aid = $1 -- ${id}`, decision: id % 50 === 0 ? 'deny' : 'allow',
              rule: 'bench', reason: null, classes: ['read'], objects: ['r:public.pgbench_accounts'],
            },
          };
          s.broker.events.emit(decided);
          s.broker.events.emit({ type: 'statement_completed', at: now, result: { statementId: id, sessionId: 1 + (id % 16), durationMs: 0.2, rows: 1, errorCode: null, maskedFields: null } });
        }
        if (now - t0 >= SECONDS * 1000) {
          clearInterval(timer);
          resolve();
        }
      }, 10);
    });
    await new Promise((r) => setTimeout(r, 1000)); // let the last batches land
    const gaps = ((await b.page.evaluate('window.__gaps')) as number[]).slice(10).sort((x, y) => x - y);
    const shown = await b.page.getByTestId('feed-count').textContent();
    const rowsInDom = await b.page.getByTestId('feed-row').count();
    const sent = id - 1;
    console.log(`\nlive feed: ${sent} statements in ${SECONDS} s (${Math.round(sent / SECONDS)}/s target ${RATE}/s), Chromium headless\n`);
    console.log(`  frames: ${gaps.length}, gap p50 ${percentile(gaps, 50).toFixed(1)} ms, p99 ${percentile(gaps, 99).toFixed(1)} ms, max ${(gaps.at(-1) ?? 0).toFixed(1)} ms`);
    console.log(`  feed shows: ${shown} (capacity-bounded), rows in the DOM: ${rowsInDom}`);
    console.log(`  smooth (p99 frame gap ≤ 50 ms): ${percentile(gaps, 99) <= 50 ? 'yes' : 'NO'}`);
  } finally {
    await b.close();
    await s.close();
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exitCode = 1;
});
