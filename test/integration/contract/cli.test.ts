import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../../src/cli.js';
import { approvalCommand } from '../../../src/operator/cli-approvals.js';
import { loadConfig } from '../../../src/config/load.js';
import { reviewInfo, serveSluice, type ServedSluice } from './helpers.js';

let s: ServedSluice;
let sessionId: number;

beforeAll(async () => {
  // No client goes through the proxy here: the broker needs no database.
  s = await serveSluice();
  sessionId = s.broker.audit.openSession({ identity: 'agent', target: 'app', clientAddr: '127.0.0.1', applicationName: 'cli-test' });
});

afterAll(async () => {
  await s?.close();
});

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { log: (x) => out.push(x), error: (x) => err.push(x) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('sluice approvals / approve / deny', () => {
  it('lists nothing, then a pending statement with its details made visible', async () => {
    expect(await run('approvals', '--config', s.configFile)).toEqual({ code: 0, out: 'no statements are waiting for approval', err: '' });
    const { id } = s.broker.approvals.request(reviewInfo(sessionId, "DELETE FROM orders WHERE note = 'a\u202Eb'", []));
    const r = await run('approvals', '--config', s.configFile);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`${id}  agent@app (test)  session ${sessionId}  write`);
    expect(r.out).toContain('⟦U+202E RIGHT-TO-LEFT OVERRIDE⟧');
    expect(r.out).toContain('WARNING: contains bidirectional control characters');
    expect(r.out).not.toContain('\u202E');
    const json = await run('approvals', '--json', '--config', s.configFile);
    expect((JSON.parse(json.out) as { id: string }[]).map((a) => a.id)).toEqual([id]);
    s.broker.approvals.void(id, 'test cleanup');
  });

  it('approve lets the statement run once; a second decision exits 1 and says nothing changed', async () => {
    const { id, decision } = s.broker.approvals.request(reviewInfo(sessionId));
    const r = await run('approve', id, '--reason', 'checked', '--config', s.configFile);
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out).toMatch(new RegExp(`^${id}: approved once by .+ via websocket$`));
    expect(await decision).toMatchObject({ kind: 'approved', scope: 'once' });
    const again = await run('deny', id, '--reason', 'changed my mind', '--config', s.configFile);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/already settled \(approved once by .*\); nothing changed/);
  });

  it('approve --session grants the shape for the session', async () => {
    const info = reviewInfo(sessionId, 'UPDATE orders SET status = $1', ['x']);
    const { id, decision } = s.broker.approvals.request(info);
    expect((await run('approve', id, '--session', '--config', s.configFile)).code).toBe(0);
    expect(await decision).toMatchObject({ kind: 'approved', scope: 'session' });
    expect(s.broker.approvals.sessionAllows(sessionId, info.shapeKey)).toBe(true);
  });

  it('deny sends the reason to the client', async () => {
    const { id, decision } = s.broker.approvals.request(reviewInfo(sessionId));
    const r = await run('deny', id, '--reason', 'use the staging database', '--config', s.configFile);
    expect(r.code).toBe(0);
    const d = await decision;
    expect(d.kind).toBe('denied');
    if (d.kind === 'denied') expect(d.refusal).toMatchObject({ code: '42501', message: expect.stringContaining('use the staging database') });
  });

  it('usage errors exit 2 with the help; --help exits 0', async () => {
    for (const argv of [['deny', 'abcd1234'], ['approve'], ['approve', 'a', 'b'], ['approvals', '--bogus'], ['deny', 'abcd1234', '--reason', '  '], ['approve', 'NOT-AN-ID']]) {
      const r = await run(...argv, '--config', s.configFile);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.err).toContain(`sluice ${argv[0]} `);
    }
    for (const cmd of ['approvals', 'approve', 'deny']) {
      const r = await run(cmd, '--help');
      expect(r).toMatchObject({ code: 0, err: '' });
      expect(r.out).toMatch(new RegExp(`^sluice ${cmd} `));
    }
  });

  it('an unknown id exits 1', async () => {
    const r = await run('approve', 'abcdef12', '--config', s.configFile);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/no approval abcdef12 is pending/);
  });

  it('--watch prints requests and decisions as they happen', async () => {
    const out: string[] = [];
    const stop = new AbortController();
    const dataDir = loadConfig(s.configFile).dataDir;
    const watching = approvalCommand('approvals', ['--watch'], { log: (x) => out.push(x), error: (x) => out.push(`E ${x}`) }, () => dataDir, stop.signal);
    await until(() => out.includes('no statements are waiting for approval'));
    const { id } = s.broker.approvals.request(reviewInfo(sessionId, 'DELETE FROM orders'));
    await until(() => out.some((l) => l.startsWith(`${id}  agent@app`)));
    s.broker.approvals.decide(id, { decision: 'deny', reason: 'watch test' }, 'tester');
    await until(() => out.includes(`${id}: denied by tester: watch test`));
    stop.abort();
    expect(await watching).toBe(0);
  });

  it('says clearly when no serve is running', async () => {
    const r = await run('approvals', '--config', s.configFile.replace('sluice.yaml', 'missing.yaml'));
    expect(r.code).toBe(2); // the config file itself is missing: a usage error
    const other = await serveSluice();
    const cfg = other.configFile;
    await other.api.close();
    const none = await run('approvals', '--config', cfg);
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/no running `sluice serve` found/);
    await other.close();
  });
});

describe('sluice serve (in process) opens the operator API', () => {
  it('prints the URL and token once, writes operator.json for the CLI, takes a free port when ui.port is busy, cleans up on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-serve-cli-'));
    // Occupy a port and configure it as ui.port: serve must still come up.
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const busy = (blocker.address() as { port: number }).port;
    const cfg = join(dir, 'sluice.yaml');
    writeFileSync(cfg, `listen: { host: 127.0.0.1, port: 0 }\ndataDir: ./data\nui: { port: ${busy} }\ntargets:\n  - { name: app, host: 127.0.0.1, port: 1, database: app, user: app, tls: { mode: disable } }\n`);
    const out: string[] = [];
    const err: string[] = [];
    const serving = main(['serve', '--config', cfg], { log: (x) => out.push(x), error: (x) => err.push(x) });
    try {
      await until(() => out.some((l) => l.startsWith('operator API: ')));
      const line = out.find((l) => l.startsWith('operator API: '))!;
      const m = /^operator API: (ws:\/\/127\.0\.0\.1:(\d+)\/api)  /.exec(line);
      expect(m).not.toBeNull();
      expect(Number(m![2])).not.toBe(busy);
      expect(err.join('\n')).toMatch(new RegExp(`ui.port ${busy} is in use`));
      const file = join(dir, 'data', 'operator.json');
      // The token is printed once: in the console URL's fragment when the console is built, else on the API line.
      const console = out.find((l) => l.startsWith('operator console: http'));
      const token = console
        ? /^operator console: http:\/\/127\.0\.0\.1:(\d+)\/#token=([A-Za-z0-9_-]+)\n/.exec(console)
        : /token: (\S+)/.exec(line);
      expect(token).not.toBeNull();
      if (console) expect(token![1]).toBe(m![2]);
      const printed = token![token!.length - 1]!;
      expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ url: m![1], token: printed });
      expect(out.filter((l) => l.includes(printed))).toHaveLength(1);
      expect(await run('approvals', '--config', cfg)).toMatchObject({ code: 0, out: 'no statements are waiting for approval' });
      process.kill(process.pid, 'SIGTERM');
      expect(await serving).toBe(0);
      expect(existsSync(file)).toBe(false);
    } finally {
      blocker.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

async function until(pred: () => boolean): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (pred()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('timed out waiting');
}
