import { describe, expect, it } from 'vitest';
import { errorResponse, parseErrorFields } from '../../../src/protocol/messages.js';
import { refusalQuery, ResponseTracker } from '../../../src/proxy/refusal.js';

const refusal = { code: '42501', message: "Sluice policy refuses write on public.t (rule \"r\")", hint: "Ask for 'write' access." };

function serverError(message: string, extra: Record<string, string> = {}): Buffer {
  // What PostgreSQL sends for the DO block's RAISE: our fields plus context and source location.
  const fields = { S: 'ERROR', V: 'ERROR', C: '42501', M: message, H: refusal.hint, W: 'PL/pgSQL function inline_code_block line 1 at RAISE', F: 'pl_exec.c', L: '3911', R: 'exec_stmt_raise', ...extra };
  const body = Buffer.concat([...Object.entries(fields).map(([k, v]) => Buffer.from(`${k}${v}\0`)), Buffer.from([0])]);
  const head = Buffer.alloc(5);
  head[0] = 0x45;
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

describe('refusalQuery', () => {
  it('is a Query whose text raises the refusal with quotes doubled and a dollar tag not in the text', () => {
    const q = refusalQuery(refusal);
    expect(q[0]).toBe(0x51);
    expect(q.readInt32BE(1)).toBe(q.length - 1);
    const sql = q.toString('utf8', 5, q.length - 1);
    expect(sql).toMatch(/^DO (\$sluice_[0-9a-f]{12}\$)BEGIN RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'Sluice policy refuses write on public.t \(rule "r"\)', HINT = 'Ask for ''write'' access.'; END\1$/);
  });
});

describe('ResponseTracker', () => {
  it('passes every ReadyForQuery the client asked for', () => {
    const t = new ResponseTracker();
    t.expectClient();
    t.expectClient();
    expect(t.onReady()).toBe(true);
    expect(t.onReady()).toBe(true);
  });

  it('hides the ReadyForQuery of a refusal standing in for a Parse, and strips the DO block context from its error', () => {
    const t = new ResponseTracker();
    t.expectClient(); // an earlier Sync
    t.refusalSent(refusal, true);
    t.expectClient(); // the client's Sync after the refused Parse
    expect(t.onReady()).toBe(true);
    const shown = parseErrorFields(t.onError(serverError(refusal.message)));
    expect(shown).toEqual({ S: 'ERROR', V: 'ERROR', C: '42501', M: refusal.message, H: refusal.hint });
    expect(t.onReady()).toBe(false); // the refusal's own
    expect(t.onReady()).toBe(true); // the client's Sync
  });

  it('when the server skipped the refusal (already discarding after an earlier error), drops nothing', () => {
    const t = new ResponseTracker();
    t.refusalSent(refusal, true);
    t.expectClient();
    // The earlier error is the server's own, not ours: it passes unchanged.
    const theirs = serverError('division by zero', { C: '22012' });
    expect(t.onError(theirs)).toBe(theirs);
    expect(t.onReady()).toBe(true); // answers the client's Sync
    // Our message is no longer expected: an identical later error is not taken for ours.
    const later = serverError(refusal.message);
    expect(t.onError(later)).toBe(later);
  });

  it('a refused simple Query keeps its ReadyForQuery (the client expects one)', () => {
    const t = new ResponseTracker();
    t.refusalSent(refusal, false);
    expect(parseErrorFields(t.onError(serverError(refusal.message))).W).toBeUndefined();
    expect(t.onReady()).toBe(true);
    const unrelated = errorResponse({ severity: 'ERROR', code: '42P01', message: 'relation "x" does not exist' });
    expect(t.onError(unrelated)).toBe(unrelated);
  });
});
