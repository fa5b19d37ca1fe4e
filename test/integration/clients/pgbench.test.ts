/**
 * pgbench through Sluice in all three query modes: every transaction succeeds, the database shows the work
 * done, and the audit store holds exactly one record per statement message with the right protocol label.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanEnv, countBy, lastSessionId, PGBENCH, runProcess, scratchDir, sessionsAfter, startEnv, statementsAfter, waitFor, withPg, type Env,
} from './util.js';

let env: Env;
beforeAll(async () => {
  env = await startEnv();
  const { cluster } = env;
  // Initialised directly (as the brief says); only the benchmark runs go through Sluice.
  const init = await runProcess(PGBENCH, ['-i', '-s', '1', '-q', '-h', cluster.host, '-p', String(cluster.port), '-U', 'app', 'app'], {
    env: cleanEnv({ PGPASSWORD: cluster.roles.app.password, PGSSLMODE: 'disable' }),
  });
  if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
}, 120_000);
afterAll(async () => {
  await env?.stop();
});

const CLIENTS = 4;
const TX_PER_CLIENT = 200;
const TX = CLIENTS * TX_PER_CLIENT;

/** The built-in TPC-B-like script, each command with pgbench's :variables as they reach the server. */
const TPCB = [
  'BEGIN;',
  'UPDATE pgbench_accounts SET abalance = abalance + ? WHERE aid = ?;',
  'SELECT abalance FROM pgbench_accounts WHERE aid = ?;',
  'UPDATE pgbench_tellers SET tbalance = tbalance + ? WHERE tid = ?;',
  'UPDATE pgbench_branches SET bbalance = bbalance + ? WHERE bid = ?;',
  'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (?, ?, ?, ?, CURRENT_TIMESTAMP);',
  'END;',
];

async function historyCount(): Promise<number> {
  return withPg(env.direct, async (c) => Number((await c.query('SELECT count(*) AS n FROM pgbench_history')).rows[0].n));
}

async function runThroughSluice(mode: 'simple' | 'extended' | 'prepared', extra: string[] = []) {
  const { sluice } = env;
  return runProcess(PGBENCH, [
    '-n', '-t', String(TX_PER_CLIENT), '-c', String(CLIENTS), '-j', '2', '-M', mode, ...extra,
    '-h', sluice.host, '-p', String(sluice.port), '-U', 'agent', 'app',
  ], { env: cleanEnv({ PGPASSWORD: sluice.key, PGSSLMODE: 'disable' }), timeoutMs: 180_000 });
}

/** Literals ($n placeholders or numbers) replaced by '?', so texts of all transactions collapse to the script. */
const normalise = (text: string) => text.replace(/\$\d+|-?\b\d+\b/g, '?');

describe('pgbench through Sluice', () => {
  for (const mode of ['simple', 'extended', 'prepared'] as const) {
    it(`-M ${mode}: all ${TX} TPC-B transactions succeed and each statement message is recorded once`, async () => {
      const before = lastSessionId(env.sluice);
      const historyBefore = await historyCount();
      const res = await runThroughSluice(mode);
      const out = res.stdout.toString();
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      expect(out).toContain(`query mode: ${mode}`);
      expect(out).toContain(`number of transactions actually processed: ${TX}/${TX}`);
      expect(out).toContain('number of failed transactions: 0 (0.000%)');
      expect(await historyCount()).toBe(historyBefore + TX); // one INSERT per committed transaction

      const sessions = sessionsAfter(env.sluice, before);
      // One connection per client plus pgbench's own main connection; all closed cleanly.
      expect(sessions).toHaveLength(CLIENTS + 1);
      expect(sessions.every((s) => s.identity === 'agent' && s.target === 'app' && s.applicationName === 'pgbench')).toBe(true);
      expect(sessions.map((s) => s.endReason)).toEqual(Array(CLIENTS + 1).fill('client terminated'));

      const all = statementsAfter(env.sluice, before);
      const script = all.filter((s) => TPCB.includes(normalise(s.text)));
      // Nothing else but pgbench's two setup queries on its main connection (scale and partitioning lookups).
      const rest = all.filter((s) => !TPCB.includes(normalise(s.text)));
      expect(rest.map((s) => s.protocol)).toEqual(['simple', 'simple']);
      expect(rest[0]!.text).toBe('select count(*) from pgbench_branches');
      expect(rest[1]!.text).toMatch(/^select o\.n, p\.partstrat, /);
      expect(new Set(rest.map((s) => s.sessionId)).size).toBe(1);
      const counts = countBy(script, (s) => `${s.protocol}:${normalise(s.text)}`);
      const expected: Record<string, number> = {};
      for (const cmd of TPCB) {
        if (mode === 'simple') expected[`simple:${cmd}`] = TX;
        else {
          expected[`execute:${cmd}`] = TX;
          // extended: an unnamed Parse before every Execute; prepared: one named Parse per command per connection.
          expected[`parse:${cmd}`] = mode === 'extended' ? TX : CLIENTS;
        }
      }
      expect(counts).toEqual(expected);
      if (mode === 'simple') {
        // Statement texts are recorded as sent, values included.
        expect(script.some((s) => /^UPDATE pgbench_accounts SET abalance = abalance \+ -?\d+ WHERE aid = \d+;$/.test(s.text))).toBe(true);
      } else {
        expect(script.every((s) => s.protocol === 'simple' || s.text.includes('$') || !/\d/.test(s.text))).toBe(true);
        const names = new Set(script.filter((s) => s.protocol === 'parse').map((s) => s.name));
        if (mode === 'extended') expect([...names]).toEqual(['']);
        else expect(names.has('')).toBe(false);
      }
    }, 180_000);
  }

  it('-S (select only), prepared: one Execute per transaction with the SELECT text', async () => {
    const before = lastSessionId(env.sluice);
    const res = await runThroughSluice('prepared', ['-S']);
    expect(res.code).toBe(0);
    expect(res.stdout.toString()).toContain(`number of transactions actually processed: ${TX}/${TX}`);
    expect(res.stdout.toString()).toContain('number of failed transactions: 0 (0.000%)');
    const counts = countBy(statementsAfter(env.sluice, before).filter((s) => s.text.includes('pgbench_accounts WHERE aid')),
      (s) => `${s.protocol}:${s.text}`);
    expect(counts).toEqual({
      'parse:SELECT abalance FROM pgbench_accounts WHERE aid = $1;': CLIENTS,
      'execute:SELECT abalance FROM pgbench_accounts WHERE aid = $1;': TX,
    });
  }, 180_000);

  it('pipeline mode (\\startpipeline, -M extended): every command of every transaction executed and recorded in order', async () => {
    const scratch = scratchDir('pgbench-pipeline');
    try {
      const file = join(scratch.dir, 'pipeline.sql');
      writeFileSync(file, [
        '\\set aid random(1, 100000)',
        '\\startpipeline',
        'SELECT abalance FROM pgbench_accounts WHERE aid = :aid;',
        'UPDATE pgbench_accounts SET abalance = abalance WHERE aid = :aid;',
        'SELECT :aid::int + 1 AS next;',
        '\\endpipeline',
        '',
      ].join('\n'));
      const before = lastSessionId(env.sluice);
      const res = await runThroughSluice('extended', ['-f', file]);
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      expect(res.stdout.toString()).toContain(`number of transactions actually processed: ${TX}/${TX}`);
      const all = statementsAfter(env.sluice, before).filter((s) => s.protocol !== 'simple');
      const counts = countBy(all, (s) => `${s.protocol}:${s.text}`);
      expect(counts).toEqual({
        'parse:SELECT abalance FROM pgbench_accounts WHERE aid = $1;': TX, 'execute:SELECT abalance FROM pgbench_accounts WHERE aid = $1;': TX,
        'parse:UPDATE pgbench_accounts SET abalance = abalance WHERE aid = $1;': TX, 'execute:UPDATE pgbench_accounts SET abalance = abalance WHERE aid = $1;': TX,
        'parse:SELECT $1::int + 1 AS next;': TX, 'execute:SELECT $1::int + 1 AS next;': TX,
      });
      // Within each session the pipelined messages keep their order: parse/execute pairs, command after command.
      for (const session of new Set(all.map((s) => s.sessionId))) {
        const seq = all.filter((s) => s.sessionId === session).map((s) => `${s.protocol[0]}${s.text.startsWith('SELECT abalance') ? 1 : s.text.startsWith('UPDATE') ? 2 : 3}`);
        expect(seq.join(' ')).toBe(Array(TX_PER_CLIENT).fill('p1 e1 p2 e2 p3 e3').join(' '));
      }
    } finally {
      scratch.remove();
    }
  }, 180_000);

  it('-C (a new connection per transaction): all sessions end cleanly and none stays open', async () => {
    const before = lastSessionId(env.sluice);
    const res = await runProcess(PGBENCH, ['-n', '-C', '-S', '-t', '25', '-c', '2', '-M', 'simple', '-h', env.sluice.host, '-p', String(env.sluice.port), '-U', 'agent', 'app'],
      { env: cleanEnv({ PGPASSWORD: env.sluice.key, PGSSLMODE: 'disable' }), timeoutMs: 180_000 });
    expect(res.code).toBe(0);
    expect(res.stdout.toString()).toContain('number of transactions actually processed: 50/50');
    const sessions = await waitFor(() => {
      const s = sessionsAfter(env.sluice, before);
      return s.every((x) => x.endedAt !== null) ? s : undefined;
    }, 'every session to end');
    expect(sessions).toHaveLength(50 + 1);
    expect(countBy(sessions, (s) => s.endReason ?? 'open')).toEqual({ 'client terminated': 51 });
    await waitFor(() => (env.sluice.broker.connectionCount() === 0 ? true : undefined), 'no client connection left');
  }, 180_000);

  it('pgbench -i through Sluice (client-side COPY, VACUUM, DDL) builds the same tables as directly', async () => {
    const init = (host: string, port: number, user: string, password: string) => runProcess(PGBENCH, ['-i', '-s', '1', '-q', '-h', host, '-p', String(port), '-U', user, 'app'],
      { env: cleanEnv({ PGPASSWORD: password, PGSSLMODE: 'disable' }), timeoutMs: 180_000 });
    const digest = () => withPg(env.direct, async (c) => (await c.query(`SELECT
      (SELECT md5(string_agg(aid || ':' || bid || ':' || abalance || ':' || filler, ',' ORDER BY aid)) FROM pgbench_accounts) AS accounts,
      (SELECT count(*) FROM pgbench_tellers) AS tellers, (SELECT count(*) FROM pgbench_branches) AS branches,
      (SELECT count(*) FROM pgbench_history) AS history,
      (SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint WHERE conrelid::regclass::text LIKE 'pgbench_%') AS pkeys`)).rows[0] as unknown);
    // Elapsed times differ from run to run; everything else pgbench prints must not.
    const untimed = (text: string) => text.replace(/\d+\.\d+ s/g, 'N s');
    const d = await init(env.cluster.host, env.cluster.port, 'app', env.cluster.roles.app.password);
    const direct = await digest();
    const s = await init(env.sluice.host, env.sluice.port, 'agent', env.sluice.key);
    expect(d.code).toBe(0);
    expect(untimed(d.stderr)).toContain('100000 of 100000 tuples (100%) done');
    expect({ code: s.code, out: s.stdout.toString(), err: untimed(s.stderr) }).toEqual({ code: d.code, out: d.stdout.toString(), err: untimed(d.stderr) });
    expect(await digest()).toEqual(direct);
    expect(direct).toMatchObject({ tellers: '10', branches: '1', history: '0', pkeys: 'pgbench_accounts_pkey,pgbench_branches_pkey,pgbench_tellers_pkey' });
  }, 180_000);
});
