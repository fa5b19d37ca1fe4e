import { describe, expect, it } from 'vitest';
import { BUILTIN_NAMES, BUILTINS } from '../../../src/policy/builtins.js';
import { evaluate } from '../../../src/policy/evaluate.js';
import type { PolicyInput } from '../../../src/policy/model.js';
import { ctx, policy, setting, stmt } from './helpers.js';
import type { ClassifiedStatement, StatementClass } from '../../../src/sql/types.js';

const EVERY_CLASS: StatementClass[] = ['read', 'write', 'ddl', 'admin', 'session', 'transaction', 'copy_in', 'copy_out', 'utility'];
/** Allows every class and object: only builtins and hidden-SQL checks can refuse. */
const allowAll = (extra: Partial<PolicyInput> = {}, allowHidden: PolicyInput['rules'] = undefined): PolicyInput => ({
  rules: allowHidden ?? [{ name: 'everything', allow: EVERY_CLASS, tables: { '*.*': 'allow' }, functions: { '*': 'allow' } }],
  ...extra,
});
const decide = (input: PolicyInput, s: ClassifiedStatement) => evaluate(policy(input), ctx(), [s]);
const call = (fn: string) => stmt({ functions: [fn], text: `SELECT ${fn}()` });

describe('builtins', () => {
  it.each([
    ['pg_read_file', 'file-access'],
    ['pg_catalog.pg_read_binary_file', 'file-access'],
    ['pg_ls_dir', 'file-access'],
    ['pg_ls_waldir', 'file-access'],
    ['pg_stat_file', 'file-access'],
    ['lo_import', 'file-access'],
    ['lo_export', 'file-access'],
    ['pg_file_write', 'file-access'],
    ['PG_READ_FILE', 'file-access'],
    ['dblink', 'network-access'],
    ['public.dblink_exec', 'network-access'],
    ['pg_reload_conf', 'server-control'],
    ['pg_promote', 'server-control'],
    ['pg_rotate_logfile', 'server-control'],
    ['pg_terminate_backend', 'backend-signals'],
    ['pg_cancel_backend', 'backend-signals'],
  ])('%s() is refused by builtin:%s even where a rule allows it', (fn, name) => {
    const d = decide(allowAll(), call(fn));
    expect(d).toMatchObject({ decision: 'deny', rule: `builtin:${name}`, object: `${fn}()` });
    expect(d.hint).toContain(`policy.disableBuiltins: [${name}]`);
  });

  it('leaves harmless functions alone (lo_from_bytea, pg_sleep)', () => {
    expect(decide(allowAll(), call('lo_from_bytea'))).toMatchObject({ decision: 'allow' });
    expect(decide(allowAll(), call('pg_sleep'))).toMatchObject({ decision: 'allow' });
  });

  it('refuses role switches, role management, ALTER SYSTEM and LOAD', () => {
    expect(decide(allowAll(), setting('role', 'postgres'))).toMatchObject({ decision: 'deny', rule: 'builtin:role-switch', object: 'SET role' });
    expect(decide(allowAll(), setting('session_authorization', 'postgres'))).toMatchObject({ rule: 'builtin:role-switch' });
    const setConfigRole = stmt({ functions: ['set_config'], settings: [{ name: 'role', value: 'postgres' }] });
    expect(decide(allowAll(), setConfigRole)).toMatchObject({ decision: 'deny', rule: 'builtin:role-switch' });
    for (const kind of ['CreateRoleStmt', 'AlterRoleStmt', 'DropRoleStmt', 'GrantRoleStmt']) {
      expect(decide(allowAll(), stmt({ class: 'admin', kind }))).toMatchObject({ decision: 'deny', rule: 'builtin:role-management' });
    }
    expect(decide(allowAll(), stmt({ class: 'admin', kind: 'AlterSystemStmt' }))).toMatchObject({ rule: 'builtin:alter-system' });
    expect(decide(allowAll(), stmt({ class: 'admin', kind: 'LoadStmt' }))).toMatchObject({ rule: 'builtin:load' });
    expect(decide(allowAll(), stmt({ class: 'admin', kind: 'VacuumStmt' }))).toMatchObject({ decision: 'allow' });
  });

  it('refuses COPY PROGRAM and server files even when the rule allows the hidden construct', () => {
    const rules: PolicyInput['rules'] = [{ name: 'copy', allow: ['copy_in', 'copy_out'], allowHidden: ['copy_program', 'server_file'] }];
    const program = stmt({ class: 'copy_out', kind: 'CopyStmt', hidden: ['copy_program'] });
    expect(decide(allowAll({}, rules), program)).toMatchObject({ decision: 'deny', rule: 'builtin:copy-program', object: 'COPY PROGRAM' });
    const file = stmt({ class: 'copy_in', kind: 'CopyStmt', hidden: ['server_file'] });
    expect(decide(allowAll({}, rules), file)).toMatchObject({ decision: 'deny', rule: 'builtin:copy-server-files' });
    // Disabled builtin + allowHidden: the operator made both choices.
    expect(decide(allowAll({ disableBuiltins: ['copy-program'] }, rules), program)).toMatchObject({ decision: 'allow', rule: 'copy' });
    // Disabled builtin without allowHidden: still hidden SQL.
    expect(decide(allowAll({ disableBuiltins: ['copy-program'] }), program)).toMatchObject({ decision: 'deny', rule: 'builtin:hidden-sql' });
  });

  it('disableBuiltins turns off exactly the named builtin', () => {
    expect(decide(allowAll({ disableBuiltins: ['backend-signals'] }), call('pg_cancel_backend'))).toMatchObject({ decision: 'allow' });
    expect(decide(allowAll({ disableBuiltins: ['backend-signals'] }), call('pg_read_file'))).toMatchObject({ rule: 'builtin:file-access' });
    // A disabled builtin only removes the safeguard; the rules still have to allow the statement.
    expect(decide({ disableBuiltins: ['backend-signals'] }, call('pg_cancel_backend'))).toMatchObject({ decision: 'deny', rule: 'default-deny' });
  });

  it('every builtin has a summary and every disableable name has a builtin', () => {
    for (const b of BUILTINS) expect(b.summary.length).toBeGreaterThan(20);
    for (const name of BUILTIN_NAMES) expect(BUILTINS.some((b) => b.name === name)).toBe(true);
  });
});

describe('pinned settings', () => {
  it.each([
    ['client_encoding', 'LATIN1'],
    ['standard_conforming_strings', 'off'],
    ['client_encoding', null],
    ['Client_Encoding', 'UTF8'],
  ])('SET %s is always refused', (name, value) => {
    const every = BUILTIN_NAMES as unknown as NonNullable<PolicyInput['disableBuiltins']>;
    const d = decide(allowAll({ disableBuiltins: every }), setting(name, value));
    expect(d).toMatchObject({ decision: 'deny', rule: 'builtin:pinned-settings', object: `SET ${name}` });
    expect(d.hint).toMatch(/pinned/);
    expect(d.hint).not.toMatch(/disableBuiltins/);
  });

  it('refuses set_config with a setting named at run time, but lets RESET ALL / DISCARD ALL return to the pins', () => {
    const dynamic = stmt({ functions: ['set_config'], settings: [{ name: '*', value: null, dynamic: true }], secondary: ['session'] });
    expect(decide(allowAll(), dynamic)).toMatchObject({ decision: 'deny', rule: 'builtin:pinned-settings' });
    expect(decide(allowAll(), stmt({ functions: ['set_config'] }))).toMatchObject({ decision: 'deny', rule: 'builtin:pinned-settings' });
    const encodingAtRunTime = stmt({ functions: ['set_config'], settings: [{ name: 'client_encoding', value: null, dynamic: true }] });
    expect(decide(allowAll(), encodingAtRunTime)).toMatchObject({ decision: 'deny', rule: 'builtin:pinned-settings' });
    expect(decide(allowAll(), stmt({ functions: ['set_config'], settings: [{ name: 'application_name', value: 'x' }] }))).toMatchObject({ decision: 'allow' });
    expect(decide(allowAll(), setting('*', null))).toMatchObject({ decision: 'allow' });
  });

  it('other settings are decided by the rules (class session)', () => {
    expect(decide(allowAll(), setting('search_path', 'public'))).toMatchObject({ decision: 'allow' });
    expect(decide({ rules: [{ name: 'r', allow: ['read'] }] }, setting('search_path', 'public'))).toMatchObject({ decision: 'deny', rule: 'default-deny' });
  });
});

describe('hidden SQL', () => {
  const doBlock = stmt({ class: 'ddl', kind: 'DoStmt', hidden: ['do_block'], text: 'DO $$ BEGIN END $$' });

  it('is refused unless a matching rule allows the construct', () => {
    const d = decide(allowAll(), doBlock);
    expect(d).toMatchObject({ decision: 'deny', rule: 'builtin:hidden-sql', object: 'DO block' });
    expect(d.hint).toMatch(/allowHidden: \[do_block\]/);
    const rules: PolicyInput['rules'] = [{ name: 'dba', allow: ['ddl'], allowHidden: ['do_block'] }];
    expect(decide(allowAll({}, rules), doBlock)).toMatchObject({ decision: 'allow', rule: 'dba' });
  });

  it('allowHidden lifts only the hidden-SQL check: the class must still be allowed', () => {
    const rules: PolicyInput['rules'] = [{ name: 'h', allow: ['read'], allowHidden: ['do_block'] }];
    expect(decide(allowAll({}, rules), doBlock)).toMatchObject({ decision: 'deny', rule: 'default-deny' });
  });

  it('allowHidden of a rule that does not match the session does not count', () => {
    const rules: PolicyInput['rules'] = [
      { name: 'all', allow: ['ddl'] },
      { name: 'ops', match: { groups: ['ops'] }, allowHidden: ['do_block', 'function_body'] },
    ];
    expect(decide(allowAll({}, rules), doBlock)).toMatchObject({ decision: 'deny', rule: 'builtin:hidden-sql' });
    const fn = stmt({ class: 'ddl', kind: 'CreateFunctionStmt', hidden: ['function_body'] });
    expect(decide(allowAll({}, rules), fn)).toMatchObject({ decision: 'deny', object: 'function body' });
    const dyn = stmt({ class: 'read', functions: ['query_to_xml'], hidden: ['dynamic_sql'] });
    expect(decide(allowAll(), dyn)).toMatchObject({ decision: 'deny', rule: 'builtin:hidden-sql', object: 'dynamic SQL' });
  });
});
