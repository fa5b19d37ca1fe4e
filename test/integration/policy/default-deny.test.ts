/**
 * Default deny and rule matching against a real PostgreSQL. Two brokers share the one cluster: `empty` has no
 * policy section at all (the shipped default: no rules), `ruled` has rules matching by group, application_name and
 * client address. Whatever no rule allows is refused with rule `default-deny` and a hint that says what to ask for.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PolicyInput } from '../../../src/policy/model.js';
import { startPostgres, type PgCluster } from '../../harness/postgres.js';
import { startSluice, type RunningSluice } from '../../harness/sluice.js';
import { psql } from '../clients/util.js';
import { expectAudit, expectRefusal, refused, rejection, withPg } from './helpers.js';

const RULES: PolicyInput = {
  rules: [
    { name: 'test-only', match: { groups: ['test'] }, allow: ['read', 'transaction', 'session'] },
    { name: 'ci-apps', match: { groups: ['ci'], applications: ['ci-*'] }, allow: ['read'] },
    { name: 'local-ops', match: { identities: ['ops-bot'], addresses: ['127.0.0.0/8'] }, allow: ['read'] },
    { name: 'remote-ops', match: { identities: ['ops-bot'], addresses: ['10.0.0.0/8'] }, allow: ['read', 'write'] },
    { name: 'far-only', match: { identities: ['far-bot'], addresses: ['192.168.0.0/16', 'fd00::/8'] }, allow: ['read', 'write'] },
  ],
};

let cluster: PgCluster;
let empty: RunningSluice;
let ruled: RunningSluice;
const urls: Record<string, string> = {};
let admin: pg.Client;

beforeAll(async () => {
  cluster = await startPostgres();
  await cluster.sql('CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2); ALTER TABLE t OWNER TO app;', 'app');
  // `policy: undefined` drops the harness's allow-all policy: the config has no policy section at all.
  empty = await startSluice(cluster, { config: { policy: undefined } });
  ruled = await startSluice(cluster, { config: { policy: RULES } });
  for (const [name, groups] of [['other-bot', ['other']], ['ci-bot', ['ci']], ['ops-bot', ['ops']], ['far-bot', ['far']]] as const) {
    urls[name] = ruled.url({ user: name, password: ruled.broker.keys.add(name, { groups: [...groups] }).secret });
  }
  admin = new pg.Client({ connectionString: cluster.url('postgres', cluster.password, 'app') });
  await admin.connect();
});
afterAll(async () => {
  await admin?.end();
  await empty?.close();
  await ruled?.close();
  await cluster?.stop();
});

const rowsOfT = async (): Promise<number> => Number((await admin.query('SELECT count(*) AS n FROM t')).rows[0].n);

describe('no policy section: default deny', () => {
  it('refuses even SELECT 1, with rule default-deny and a hint saying how to get access', async () => {
    await withPg(empty.url(), async (c) => {
      const err = await refused(empty, c, 'SELECT 1', { rule: 'default-deny', cls: 'read' });
      expect(err.message).toBe('Sluice policy refuses read for identity "agent" (rule "default-deny")');
      expect(err.hint).toContain('No policy rule matches identity "agent" (groups: test) on target "app"');
      expect(err.hint).toContain('ask a Sluice operator to add a rule in policy.rules');
    });
  });

  it('refuses every class, simple and extended, and changes nothing; the connection keeps answering', async () => {
    await withPg(empty.url(), async (c) => {
      for (const [sql, cls] of [['BEGIN', 'transaction'], ['SET search_path = public', 'session'], ['SHOW search_path', 'read'], ['INSERT INTO t VALUES (3)', 'write'], ['DELETE FROM t', 'write'], ['DROP TABLE t', 'ddl'], ['VACUUM t', 'admin']] as const) {
        await refused(empty, c, sql, { rule: 'default-deny', cls });
      }
      const ext = await rejection(c.query('SELECT $1::int AS x', [1]));
      expectRefusal(ext, { rule: 'default-deny', cls: 'read' });
      expectAudit(empty, 'SELECT $1::int AS x', 'deny', 'default-deny');
    });
    expect(await rowsOfT()).toBe(2);
  });

  it('psql shows the agent the refusal and the hint', async () => {
    const r = await psql(empty.url(), ['-c', 'SELECT count(*) FROM t']);
    expect(r.code).toBe(1);
    expect(r.stdout.toString('utf8')).toBe('');
    expect(r.stderr).toContain('ERROR:  Sluice policy refuses read on public.t for identity "agent" (rule "default-deny")');
    expect(r.stderr).toContain('HINT:  No policy rule matches identity "agent"');
  });
});

describe('rules match identities and groups', () => {
  it('allows the group the rule names', async () => {
    const r = await withPg(ruled.url(), (c) => c.query('SELECT count(*)::int AS n FROM t'));
    expect(r.rows).toEqual([{ n: 2 }]);
    expectAudit(ruled, 'SELECT count(*)::int AS n FROM t', 'allow', 'test-only');
  });

  it('refuses another identity in another group with default-deny', async () => {
    await withPg(urls['other-bot']!, async (c) => {
      const err = await refused(ruled, c, 'SELECT 1 AS other', { rule: 'default-deny', cls: 'read' });
      expect(err.message).toContain('identity "other-bot"');
      expect(err.hint).toContain('No policy rule matches identity "other-bot" (groups: other)');
      await refused(ruled, c, 'DELETE FROM t', { rule: 'default-deny', cls: 'write' });
    });
    expect(await rowsOfT()).toBe(2);
  });
});

describe('rules match application_name', () => {
  const ciQuery = 'SELECT count(*)::int AS n FROM t';
  const asCi = <T>(app: string | undefined, fn: (c: pg.Client) => Promise<T>) => withPg(urls['ci-bot']!, fn, app === undefined ? {} : { application_name: app });

  it('allows only when the client sets an application_name the rule names', async () => {
    expect((await asCi('ci-nightly', (c) => c.query(ciQuery))).rows).toEqual([{ n: 2 }]);
    expectAudit(ruled, ciQuery, 'allow', 'ci-apps');
    const session = ruled.broker.audit.listSessions(5).find((s) => s.identity === 'ci-bot' && s.applicationName === 'ci-nightly');
    expect(session).toBeDefined();
  });

  it.each([
    ['no application_name', undefined],
    ['a name the glob does not match', 'deploy-ci'],
    ['a name differing only in case (globs are case-sensitive)', 'CI-nightly'],
  ])('refuses with %s', async (_what, app) => {
    await asCi(app, async (c) => {
      const err = await refused(ruled, c, 'SELECT 2 AS ci', { rule: 'default-deny', cls: 'read' });
      expect(err.hint).toContain('No policy rule matches identity "ci-bot"');
      if (app !== undefined) expect(err.hint).toContain(`application "${app}"`);
    });
  });

  it('setting application_name after connecting does not make a rule match', async () => {
    await asCi(undefined, async (c) => {
      await refused(ruled, c, "SET application_name = 'ci-nightly'", { rule: 'default-deny', cls: 'session' });
      await refused(ruled, c, "SELECT set_config('application_name', 'ci-nightly', false)", { rule: 'default-deny' });
      await refused(ruled, c, 'SELECT 3 AS ci', { rule: 'default-deny', cls: 'read' });
    });
  });
});

describe('rules match the client address', () => {
  it('a rule for 127.0.0.0/8 applies to a local client; one for 10.0.0.0/8 does not', async () => {
    await withPg(urls['ops-bot']!, async (c) => {
      expect((await c.query('SELECT count(*)::int AS n FROM t')).rows).toEqual([{ n: 2 }]);
      expectAudit(ruled, 'SELECT count(*)::int AS n FROM t', 'allow', 'local-ops');
      // remote-ops would allow the write, but the client is not in 10.0.0.0/8.
      const err = await refused(ruled, c, 'INSERT INTO t VALUES (9)', { rule: 'default-deny', cls: 'write', object: 't' });
      expect(err.hint).toContain('No policy rule allows write on public.t for identity "ops-bot"');
    });
    expect(await rowsOfT()).toBe(2);
  });

  it('an identity whose rules all name other networks is refused everything, and told its address', async () => {
    await withPg(urls['far-bot']!, async (c) => {
      const err = await refused(ruled, c, 'SELECT 4 AS far', { rule: 'default-deny', cls: 'read' });
      expect(err.hint).toMatch(/No policy rule matches identity "far-bot" \(groups: far\) on target "app" from (::ffff:)?127\.0\.0\.1/);
      await refused(ruled, c, 'DELETE FROM t', { rule: 'default-deny', cls: 'write' });
    });
    expect(await rowsOfT()).toBe(2);
  });
});
