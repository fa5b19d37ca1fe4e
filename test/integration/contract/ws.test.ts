import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { SluiceEvent } from '../../../src/contract/api.js';
import { readOperatorInfo } from '../../../src/operator/serve.js';
import { ApiCallError, connectContract, type ContractClient } from '../../../src/operator/ws-client.js';
import { startPostgres, type PgCluster } from '../../harness/postgres.js';
import { CONFIG_POLICY, reviewInfo, serveSluice, type ServedSluice } from './helpers.js';

let cluster: PgCluster;
let s: ServedSluice;
let client: ContractClient;
const events: SluiceEvent[] = [];

beforeAll(async () => {
  cluster = await startPostgres();
  await cluster.sql('CREATE TABLE orders (id int PRIMARY KEY, status text); INSERT INTO orders SELECT g, \'open\' FROM generate_series(1, 100) g;', 'app');
  await cluster.sql('ALTER TABLE orders OWNER TO app; ANALYZE orders;', 'app');
  s = await serveSluice(cluster);
  client = await connectContract(s.api.url, s.api.token);
  client.onEvents((batch) => events.push(...batch));
});

afterAll(async () => {
  client?.close();
  await s?.close();
  await cluster?.stop();
});

/** Status of a raw WebSocket handshake with these headers (101 = accepted). */
function handshake(headers: Record<string, string>, path = '/api'): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port: s.api.port, path,
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', ...headers },
    });
    req.on('upgrade', (_res, socket) => { socket.destroy(); resolve(101); });
    req.on('response', (res) => { res.resume(); resolve(res.statusCode ?? 0); });
    req.on('error', reject);
    req.end();
  });
}

async function waitFor<T extends SluiceEvent['type']>(type: T, pred: (e: Extract<SluiceEvent, { type: T }>) => boolean = () => true): Promise<Extract<SluiceEvent, { type: T }>> {
  for (let i = 0; i < 200; i++) {
    const hit = events.find((e): e is Extract<SluiceEvent, { type: T }> => e.type === type && pred(e as Extract<SluiceEvent, { type: T }>));
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no ${type} event`);
}

describe('operator WebSocket: who may connect', () => {
  it('accepts the token as a bearer header (CLI) with no Origin', async () => {
    const base = { 'Sec-WebSocket-Protocol': 'sluice.v1', Host: `127.0.0.1:${s.api.port}` };
    expect(await handshake({ ...base, Authorization: `Bearer ${s.api.token}` })).toBe(101);
    expect(await handshake(base)).toBe(401);
    expect(await handshake({ ...base, Authorization: `Bearer ${s.api.token}x` })).toBe(401);
    expect(await handshake({ ...base, Authorization: `Bearer ${s.api.token}` }, '/other')).toBe(404);
    expect(await handshake({ Host: base.Host, Authorization: `Bearer ${s.api.token}` })).toBe(400);
  });

  it('accepts a browser only from its own origin, and never a foreign Host (DNS rebinding)', async () => {
    const browser = { 'Sec-WebSocket-Protocol': `sluice.v1, sluice.token.${s.api.token}`, Host: `127.0.0.1:${s.api.port}` };
    expect(await handshake({ ...browser, Origin: `http://127.0.0.1:${s.api.port}` })).toBe(101);
    expect(await handshake({ ...browser, Origin: 'http://evil.example' })).toBe(403);
    expect(await handshake({ ...browser, Origin: `http://localhost:${s.api.port}` })).toBe(403);
    expect(await handshake({ ...browser, Origin: 'null' })).toBe(403);
    expect(await handshake({ ...browser, Host: `evil.example:${s.api.port}`, Origin: `http://evil.example:${s.api.port}` })).toBe(403);
    expect(await handshake({ ...browser, Host: `evil.example:${s.api.port}` })).toBe(403);
  });

  it('the typed client connects browser-style and is refused from another origin', async () => {
    const ok = await connectContract(s.api.url, s.api.token, { tokenAsProtocol: true, origin: s.api.origin });
    expect((await ok.call('getStats', {})).policyVersion).toBe(1);
    ok.close();
    await expect(connectContract(s.api.url, s.api.token, { origin: 'http://127.0.0.1:1' })).rejects.toThrow(/HTTP 403/);
    await expect(connectContract(s.api.url, 'wrong')).rejects.toThrow(/HTTP 401/);
  });

  it('never echoes or logs the token; the discovery file is 0600', () => {
    expect(s.logs.join('\n')).not.toContain(s.api.token);
    expect(statSync(s.api.file).mode & 0o777).toBe(0o600);
    expect(readOperatorInfo(s.dataDir)).toMatchObject({ port: s.api.port, token: s.api.token, url: s.api.url });
  });

  it('answers malformed messages with structured errors', async () => {
    const ws = new WebSocket(s.api.url, ['sluice.v1'], { headers: { Authorization: `Bearer ${s.api.token}` } });
    const replies: unknown[] = [];
    ws.on('message', (d) => replies.push(JSON.parse(String(d))));
    await new Promise((r) => ws.once('open', r));
    ws.send('not json');
    ws.send(JSON.stringify({ id: 2, method: 'dropEverything' }));
    ws.send(JSON.stringify({ id: 3, method: 'decide', args: { id: 'abcd1234', decision: 'deny' } }));
    ws.send(JSON.stringify({ id: 4 }));
    for (let i = 0; i < 100 && replies.length < 5; i++) await new Promise((r) => setTimeout(r, 20));
    ws.close();
    expect(replies[0]).toMatchObject({ type: 'hello', version: 1 });
    // Replies carry the request id; their order is not promised.
    expect(replies.slice(1)).toHaveLength(4);
    expect(replies.slice(1)).toEqual(expect.arrayContaining([
      { type: 'reply', id: null, ok: false, error: { code: 'bad_request', message: 'the message is not JSON' } },
      { type: 'reply', id: 2, ok: false, error: { code: 'unknown_method', message: 'unknown method "dropEverything"' } },
      { type: 'reply', id: 3, ok: false, error: { code: 'invalid_arguments', message: 'invalid arguments for decide', issues: [{ path: 'reason', message: 'a denial needs a reason' }] } },
      { type: 'reply', id: null, ok: false, error: { code: 'bad_request', message: expect.stringMatching(/expected \{ "id"/) } },
    ]));
  });
});

describe('operator WebSocket: the contract', () => {
  let sessionId = 0;

  it('streams session and statement events from real client traffic', async () => {
    const c = new pg.Client({ connectionString: s.url(), application_name: 'ws-test' });
    await c.connect();
    await c.query('SELECT count(*) FROM orders');
    await expect(c.query('DROP TABLE orders')).rejects.toThrow();
    await c.end();
    const opened = await waitFor('session_opened', (e) => e.session.applicationName === 'ws-test');
    sessionId = opened.session.id;
    expect(opened.session).toMatchObject({ identity: 'agent', target: 'app' });
    const allowed = await waitFor('statement_decided', (e) => e.statement.sessionId === sessionId && e.statement.decision === 'allow');
    expect(allowed.statement.text).toBe('SELECT count(*) FROM orders');
    const denied = await waitFor('statement_decided', (e) => e.statement.sessionId === sessionId && e.statement.decision === 'deny');
    expect(denied.statement).toMatchObject({ text: 'DROP TABLE orders', classes: ['ddl'] });
    await waitFor('session_closed', (e) => e.sessionId === sessionId);
  });

  it('lists sessions with filters and a session\'s statements with their results', async () => {
    const refused = await client.call('listSessions', { hadRefusals: true });
    expect(refused.map((x) => x.id)).toContain(sessionId);
    expect(refused.find((x) => x.id === sessionId)).toMatchObject({ identity: 'agent', refusals: 1, applicationName: 'ws-test' });
    expect((await client.call('listSessions', { hadRefusals: false })).map((x) => x.id)).not.toContain(sessionId);
    expect(await client.call('listSessions', { identity: 'nobody' })).toEqual([]);
    expect(await client.call('listSessions', { since: Date.now() + 60_000 })).toEqual([]);
    s.broker.audit.checkpoint();
    await new Promise((r) => setTimeout(r, 150)); // completions are written within 100 ms
    const stmts = await client.call('listStatements', { sessionId });
    expect(stmts.map((x) => [x.text, x.decision])).toEqual([['SELECT count(*) FROM orders', 'allow'], ['DROP TABLE orders', 'deny']]);
    expect(stmts[0]!.result).toMatchObject({ rows: 1, errorCode: null });
    await expect(client.call('listStatements', { sessionId: 999999 })).rejects.toMatchObject({ error: { code: 'not_found' } });
  });

  it('decides a pending approval and tells a late decision apart, with events and the operator recorded', async () => {
    const { id, decision } = s.broker.approvals.request(reviewInfo(sessionId));
    const requested = await waitFor('approval_requested', (e) => e.approval.id === id);
    expect(requested.approval).toMatchObject({ statement: 'DELETE FROM orders WHERE id = $1', params: ['7'], recentStatements: ['BEGIN'] });
    expect((await client.call('listApprovals', {})).map((a) => a.id)).toEqual([id]);
    const r = await client.call('decide', { id, decision: 'approve_once', reason: 'ticket 42' });
    expect(r).toMatchObject({ outcome: 'applied', approval: { id, resolution: { kind: 'approved_once', reason: 'ticket 42' } } });
    const d = await decision;
    expect(d).toMatchObject({ kind: 'approved', scope: 'once' });
    if (d.kind === 'approved') expect(d.operator).toMatch(/ via websocket$/);
    expect(await client.call('decide', { id, decision: 'deny', reason: 'too late' })).toMatchObject({ outcome: 'not_applied', why: 'already_resolved' });
    await waitFor('approval_resolved', (e) => e.approval.id === id);
    expect(await client.call('listApprovals', {})).toEqual([]);
    const audited = s.broker.db.prepare("SELECT kind FROM audit_events WHERE kind LIKE 'approval%' ORDER BY id").all() as { kind: string }[];
    expect(audited.map((a) => a.kind)).toEqual(['approval_requested', 'approval_resolved', 'approval_late_decision']);
  });

  it('shows the estimated rows of a held write, from EXPLAIN on a side connection to its target', async () => {
    const { id } = s.broker.approvals.request(reviewInfo(sessionId, 'DELETE FROM orders WHERE id <= $1', ['50']));
    const updated = await waitFor('approval_updated', (e) => e.approval.id === id);
    expect(updated.approval.impact).toMatchObject({ kind: 'estimate', operation: 'delete', relation: 'public.orders' });
    if (updated.approval.impact.kind === 'estimate') {
      expect(updated.approval.impact.rows).toBeGreaterThanOrEqual(30);
      expect(updated.approval.impact.rows).toBeLessThanOrEqual(70);
    }
    expect((await client.call('listApprovals', {}))[0]!.impact.kind).toBe('estimate');
    await client.call('decide', { id, decision: 'deny', reason: 'too many rows' });
    const c = new pg.Client({ connectionString: cluster.url('app', cluster.roles.app.password, 'app') });
    await c.connect();
    expect((await c.query('SELECT count(*)::int AS n FROM orders')).rows[0]).toEqual({ n: 100 });
    await c.end();
  });

  it('edits the rules: refuses invalid ones with the reason, applies valid ones through the watcher', async () => {
    const rules = await client.call('getRules', {});
    expect(rules).toMatchObject({ text: CONFIG_POLICY, editable: true, source: s.configFile, policyVersion: 1 });
    expect(rules.sections).toContain('policy');
    const bad = await client.call('putRules', { text: rules.text.replace('utility]', 'utilty]'), baseSha256: rules.sha256 });
    expect(bad.applied).toBe(false);
    if (!bad.applied) expect(bad.problems[0]).toMatchObject({ line: 5, reason: expect.stringMatching(/must be one of/) });
    const good = await client.call('putRules', { text: rules.text.replace('utility]', 'utility, ddl]'), baseSha256: rules.sha256 });
    expect(good).toMatchObject({ applied: true, policyVersion: 2 });
    await waitFor('policy_changed', (e) => e.policyVersion === 2);
    await expect(client.call('putRules', { text: rules.text, baseSha256: rules.sha256 })).rejects.toMatchObject({ error: { code: 'conflict' } });
    const c = new pg.Client({ connectionString: s.url() });
    await c.connect();
    await c.query('CREATE TABLE made_after_edit (id int)');
    await c.end();
    expect(readFileSync(s.configFile, 'utf8')).toMatch(/^# test config\nlisten:/);
  });

  it('a broken config file edited by hand is reported, not applied', async () => {
    const before = readFileSync(s.configFile, 'utf8');
    writeFileSync(s.configFile, before.replace('listen:', 'listn:'));
    await expect(client.call('putRules', { text: CONFIG_POLICY })).resolves.toMatchObject({ applied: false, problems: [{ line: 0, reason: expect.stringMatching(/elsewhere in the config file.*listn/) }] });
    writeFileSync(s.configFile, before);
  });

  it('manages agent keys: the secret once, then list and revoke', async () => {
    const added = await client.call('addKey', { name: 'ci-bot', groups: ['test'] });
    expect(added.secret).toMatch(/^sk_/);
    const c = new pg.Client({ connectionString: s.url({ user: 'ci-bot', password: added.secret }) });
    await c.connect();
    await c.end();
    expect((await client.call('listKeys', {})).find((k) => k.name === 'ci-bot')).toMatchObject({ status: 'active', groups: ['test'] });
    expect(JSON.stringify(await client.call('listKeys', {}))).not.toContain(added.secret);
    await expect(client.call('addKey', { name: 'ci-bot' })).rejects.toMatchObject({ error: { code: 'conflict' } });
    expect(await client.call('revokeKey', { name: 'ci-bot' })).toEqual({ revoked: true });
    expect(await client.call('revokeKey', { name: 'ci-bot' })).toEqual({ revoked: false });
  });

  it('lists targets with open sessions, and stats', async () => {
    const c = new pg.Client({ connectionString: s.url() });
    await c.connect();
    const [target] = await client.call('listTargets', {});
    expect(target).toMatchObject({ name: 'app', database: 'app', user: 'app', tlsMode: 'disable', openSessions: 1 });
    expect(JSON.stringify(target)).not.toContain(cluster.roles.app.password);
    const stats = await client.call('getStats', {});
    expect(stats).toMatchObject({ openSessions: 1, pendingApprovals: 0, policyVersion: 2 });
    expect(stats.statements.deny).toBeGreaterThanOrEqual(1);
    expect(stats.statements.allow).toBeGreaterThanOrEqual(2);
    await c.end();
  });

  it('a request error is an ApiCallError with the contract code', async () => {
    const err = await client.call('listStatements', { sessionId: -1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiCallError);
    expect((err as ApiCallError).error.code).toBe('invalid_arguments');
  });

  it('removes the discovery file on close and drops its clients', async () => {
    const other = await serveSluice();
    const c = await connectContract(other.api.url, other.api.token);
    expect(existsSync(other.api.file)).toBe(true);
    await other.close();
    expect(await c.closed).toBe('Sluice is shutting down');
    expect(existsSync(other.api.file)).toBe(false);
  });
});
