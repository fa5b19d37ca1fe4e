import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ClientMessageSchema, METHODS, REQUEST_SCHEMAS, toIssues } from '../../../src/contract/api.js';

describe('contract request schemas', () => {
  it('decide: a denial needs a reason; ids are short lowercase tokens; extra keys are refused', () => {
    const s = REQUEST_SCHEMAS.decide;
    expect(s.safeParse({ id: '3f9c2a1b', decision: 'approve_once' }).success).toBe(true);
    expect(s.safeParse({ id: '3f9c2a1b', decision: 'approve_session', reason: 'batch job' }).success).toBe(true);
    expect(s.safeParse({ id: '3f9c2a1b', decision: 'deny' }).success).toBe(false);
    const blank = s.safeParse({ id: '3f9c2a1b', decision: 'deny', reason: '   ' });
    expect(blank.success).toBe(false);
    if (!blank.success) expect(toIssues(blank.error)).toEqual([{ path: 'reason', message: 'a denial needs a reason' }]);
    expect(s.safeParse({ id: '3f9c2a1b', decision: 'deny', reason: 'no' }).success).toBe(true);
    expect(s.safeParse({ id: '../etc', decision: 'approve_once' }).success).toBe(false);
    expect(s.safeParse({ id: '3f9c2a1b', decision: 'approve' }).success).toBe(false);
    expect(s.safeParse({ id: '3f9c2a1b', decision: 'approve_once', operator: 'mallory' }).success).toBe(false);
  });

  it('listSessions: filters are typed and the limit is bounded, with a default', () => {
    const s = REQUEST_SCHEMAS.listSessions;
    expect(s.parse({})).toEqual({ limit: 100 });
    expect(s.parse({ identity: 'agent', hadRefusals: true, since: 0, limit: 5 })).toEqual({ identity: 'agent', hadRefusals: true, since: 0, limit: 5 });
    expect(s.safeParse({ limit: 100000 }).success).toBe(false);
    expect(s.safeParse({ since: '2024-01-01' }).success).toBe(false);
    expect(s.safeParse({ hadRefusals: 'yes' }).success).toBe(false);
  });

  it('addKey, putRules and the rest refuse malformed input', () => {
    expect(REQUEST_SCHEMAS.addKey.safeParse({ name: 'bad name' }).success).toBe(false);
    expect(REQUEST_SCHEMAS.addKey.safeParse({ name: 'ci-bot', groups: ['a,b'] }).success).toBe(false);
    expect(REQUEST_SCHEMAS.addKey.parse({ name: 'ci-bot' })).toEqual({ name: 'ci-bot', groups: [] });
    expect(REQUEST_SCHEMAS.putRules.safeParse({ text: 'policy: {}', baseSha256: 'abc' }).success).toBe(false);
    expect(REQUEST_SCHEMAS.listStatements.safeParse({ sessionId: 0 }).success).toBe(false);
    expect(REQUEST_SCHEMAS.getStats.safeParse({ x: 1 }).success).toBe(false);
  });

  it('the envelope needs an id and a method name', () => {
    expect(ClientMessageSchema.safeParse({ id: 1, method: 'listApprovals' }).success).toBe(true);
    expect(ClientMessageSchema.safeParse({ method: 'listApprovals' }).success).toBe(false);
    expect(ClientMessageSchema.safeParse({ id: 1, method: '' }).success).toBe(false);
    expect(ClientMessageSchema.safeParse({ id: 1, method: 'x', args: {}, extra: 1 }).success).toBe(false);
  });

  it('lists every method the issue asks for', () => {
    expect([...METHODS].sort()).toEqual(
      ['addKey', 'decide', 'getRules', 'getStats', 'listApprovals', 'listIdentities', 'listKeys', 'listSessions', 'listStatements', 'listTargets', 'putRules', 'revokeKey',
        // the operator console (issue 7)
        'checkRules', 'tryStatement', 'checkTargets', 'exportSession', 'verifyChain', 'accessReview', 'getConnectInfo'].sort(),
    );
  });

  it('stays importable from a browser: it imports zod and its own files, nothing else', () => {
    const importsOf = (file: string) => {
      const source = readFileSync(new URL(`../../../src/contract/${file}`, import.meta.url), 'utf8');
      return [...source.matchAll(/^(?:import|export) .* from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]);
    };
    expect(importsOf('api.ts')).toEqual(['zod', './console.js', './console.js']);
    expect(importsOf('console.ts')).toEqual(['./api.js']);
  });
});
