import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SluiceEvent } from '../../../src/contract/api.js';
import { ApiCallError, connectContract, type ContractClient } from '../../../src/operator/ws-client.js';
import { startPostgres, type PgCluster } from '../../harness/postgres.js';
import { serveSluice, type ServedSluice } from './helpers.js';

let cluster: PgCluster;
let s: ServedSluice;
let client: ContractClient;
const events: SluiceEvent[] = [];

beforeAll(async () => {
  cluster = await startPostgres();
  await cluster.sql('CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, \'a\'), (2, \'b\'); ALTER TABLE items OWNER TO app;', 'app');
  s = await serveSluice(cluster, { uiRoot: null });
  client = await connectContract(s.api.url, s.api.token);
  client.onEvents((batch) => events.push(...batch));
});

afterAll(async () => {
  client?.close();
  await s?.close();
  await cluster?.stop();
});

async function session(sql: string[]): Promise<void> {
  const c = new pg.Client({ connectionString: s.url(), application_name: 'console-test' });
  await c.connect();
  try {
    for (const q of sql) await c.query(q).catch(() => {});
  } finally {
    await c.end();
  }
}

async function until<T>(f: () => T | undefined): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = f();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('timed out');
}

describe('operator console capabilities over the WebSocket', () => {
  it('tryStatement decides with the running policy and the key\'s groups, without running anything', async () => {
    const read = await client.call('tryStatement', { identity: 'agent', target: 'app', sql: 'SELECT name FROM items' });
    expect(read).toMatchObject({ decision: 'allow', rule: 'tests-no-ddl', groups: ['test'], classes: ['read'], tables: ['r:public.items'], refused: null });
    const ddl = await client.call('tryStatement', { identity: 'agent', target: 'app', sql: 'DROP TABLE items' });
    expect(ddl.decision).toBe('deny');
    expect(ddl.message).toContain('ddl');
    // Another identity has no groups, so no rule matches it.
    expect((await client.call('tryStatement', { identity: 'stranger', target: 'app', sql: 'SELECT 1' })).rule).toBe('default-deny');
    expect((await client.call('tryStatement', { identity: 'stranger', groups: ['test'], target: 'app', sql: 'SELECT 1' })).decision).toBe('allow');
    const broken = await client.call('tryStatement', { identity: 'agent', target: 'app', sql: 'SELEC 1' });
    expect(broken).toMatchObject({ decision: 'deny', refused: { code: '42601' } });
    // Nothing reached the proxy: no session was recorded.
    expect(await client.call('listSessions', {})).toEqual([]);
    await expect(client.call('tryStatement', { identity: 'agent', target: 'app', sql: '' })).rejects.toMatchObject({ error: { code: 'invalid_arguments' } });
  });

  it('checkRules reports what a save would refuse, and writes nothing', async () => {
    const doc = await client.call('getRules', {});
    expect((await client.call('checkRules', { text: doc.text })).problems).toEqual([]);
    const bad = await client.call('checkRules', { text: doc.text.replace('read, write', 'reed, write') });
    expect(bad.problems[0]).toMatchObject({ line: 5 });
    expect(bad.problems[0]!.reason).toMatch(/must be one of/);
    expect((await client.call('getRules', {})).sha256).toBe(doc.sha256);
  });

  it('streams identity and target with each statement, then its duration and rows', async () => {
    await session(['SELECT id FROM items ORDER BY id']);
    const decided = await until(() => events.find((e): e is Extract<SluiceEvent, { type: 'statement_decided' }> => e.type === 'statement_decided' && e.statement.text.startsWith('SELECT id FROM items')));
    expect(decided.statement).toMatchObject({ identity: 'agent', target: 'app', decision: 'allow' });
    const done = await until(() => events.find((e): e is Extract<SluiceEvent, { type: 'statement_completed' }> => e.type === 'statement_completed' && e.result.statementId === decided.statement.id));
    expect(done.result).toMatchObject({ sessionId: decided.statement.sessionId, rows: 2, errorCode: null });
  });

  it('exports one session as JSON lines and verifies the hash chain', async () => {
    await session(['SELECT 1 AS export_me', 'DROP TABLE items']);
    const sessions = await client.call('listSessions', {});
    const mine = sessions.find((x) => x.refusals > 0)!;
    const e = await client.call('exportSession', { sessionId: mine.id });
    const lines = e.jsonl.trim().split('\n').map((l) => JSON.parse(l) as { type: string; text?: string; decision?: string; session: { id: number } });
    expect(lines.length).toBe(e.lines);
    expect(lines.every((l) => l.session.id === mine.id)).toBe(true);
    expect(lines.filter((l) => l.type === 'statement').map((l) => [l.text, l.decision])).toEqual([['SELECT 1 AS export_me', 'allow'], ['DROP TABLE items', 'deny']]);
    await expect(client.call('exportSession', { sessionId: 999_999 })).rejects.toBeInstanceOf(ApiCallError);

    expect(await client.call('verifyChain', {})).toMatchObject({ ok: true });
    // Edit a recorded statement behind Sluice's back: verification names the record and its session.
    const st = s.broker.db.prepare("SELECT id FROM statements WHERE text = 'SELECT 1 AS export_me'").get() as { id: number };
    s.broker.db.prepare("UPDATE statements SET text = 'SELECT 2' WHERE id = ?").run(st.id);
    const broken = await client.call('verifyChain', {});
    expect(broken).toMatchObject({ ok: false, sessionId: mine.id, firstBad: { table: 'statements', id: st.id, problem: 'changed' } });
  });

  it('checkTargets logs in and reports the server version, and says why when it cannot', async () => {
    const [app] = await client.call('checkTargets', {});
    expect(app).toMatchObject({ name: 'app', reachable: true, tlsMode: 'disable', error: null });
    expect(app!.serverVersion).toMatch(/^15\./);
    expect(typeof app!.serverOffersTls).toBe('boolean');
    await expect(client.call('checkTargets', { name: 'nope' })).rejects.toMatchObject({ error: { code: 'not_found' } });
  });

  it('accessReview and getConnectInfo give the review table and the psql line facts', async () => {
    const review = await client.call('accessReview', {});
    expect(review.unusedDays).toBe(30);
    expect(review.identities.find((i) => i.identity === 'agent')).toMatchObject({ hasKey: true, status: 'active' });
    const info = await client.call('getConnectInfo', {});
    expect(info).toEqual({ host: '127.0.0.1', port: s.proxyPort, targets: ['app'], demo: false, activeKeys: ['agent'] });
  });
});
