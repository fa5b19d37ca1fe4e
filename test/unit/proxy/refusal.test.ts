import { describe, expect, it } from 'vitest';
import { errorResponse, parseErrorFields } from '../../../src/protocol/messages.js';
import { refusalExtended, refusalQuery, ResponseTracker } from '../../../src/proxy/refusal.js';

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

const frame = (code: string, body = Buffer.alloc(0)) => {
  const head = Buffer.alloc(5);
  head[0] = code.charCodeAt(0);
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
};
const ready = (status = 'I') => frame('Z', Buffer.from(status));
const codes = (frames: Buffer[]) => frames.map((f) => String.fromCharCode(f[0]!)).join('');
const feed = (t: ResponseTracker, frames: Buffer[]) => frames.flatMap((f) => t.onFrame(f));

describe('refusalExtended', () => {
  it('is Parse, Bind and Execute of the refusal on the unnamed statement', () => {
    const m = refusalExtended(refusal);
    const seen: string[] = [];
    for (let at = 0; at < m.length; at += 1 + m.readInt32BE(at + 1)) seen.push(String.fromCharCode(m[at]!));
    expect(seen).toEqual(['P', 'B', 'E']);
    expect(m.toString('utf8')).toContain("RAISE EXCEPTION USING ERRCODE = '42501'");
  });
});

describe('ResponseTracker', () => {
  it('is inactive (frames pass untouched) while no refusal is pending', () => {
    const t = new ResponseTracker();
    t.expectClient();
    expect(t.active).toBe(false);
  });

  it("hides a Parse refusal's ParseComplete/BindComplete and strips the DO block context from its error", () => {
    const t = new ResponseTracker();
    t.refusedParse(refusal);
    expect(t.active).toBe(true);
    // The client's own P1/B1 before the refused Parse, then ours, then our error; then the client's Sync.
    const out = feed(t, [frame('1'), frame('2'), frame('1'), frame('2'), serverError(refusal.message)]);
    t.expectClient();
    expect(codes(out)).toBe('12E');
    expect(parseErrorFields(out[2]!)).toEqual({ S: 'ERROR', V: 'ERROR', C: '42501', M: refusal.message, H: refusal.hint });
    expect(codes(feed(t, [ready()]))).toBe('Z');
    expect(t.active).toBe(false);
  });

  it('holds ParseComplete across chunks until the next frame says whose it was', () => {
    const t = new ResponseTracker();
    t.refusedParse(refusal);
    expect(feed(t, [frame('1')])).toEqual([]);
    expect(codes(feed(t, [frame('2')]))).toBe('');
    expect(codes(feed(t, [serverError(refusal.message)]))).toBe('E');
  });

  it('when the server answered the refusal with its own error (failed transaction: 25P02), passes everything and forgets it', () => {
    const t = new ResponseTracker();
    t.refusedParse(refusal);
    t.expectClient();
    const theirs = serverError('current transaction is aborted, commands ignored until end of transaction block', { C: '25P02' });
    expect(feed(t, [theirs])).toEqual([theirs]);
    expect(codes(feed(t, [ready('E')]))).toBe('Z');
    expect(t.active).toBe(false);
    // An identical message later is not taken for ours.
    const later = serverError(refusal.message);
    expect(t.active ? feed(t, [later]) : [later]).toEqual([later]);
  });

  it('a refused simple Query keeps its ReadyForQuery and restores the parser position', () => {
    const t = new ResponseTracker();
    t.refusedQuery({ ...refusal, code: '42601', message: 'syntax error at or near "SELEC"', position: 1 });
    const out = feed(t, [serverError('syntax error at or near "SELEC"', { C: '42601' }), ready()]);
    expect(codes(out)).toBe('EZ');
    expect(parseErrorFields(out[0]!)).toMatchObject({ C: '42601', P: '1' });
    expect(parseErrorFields(out[0]!).W).toBeUndefined();
    expect(t.active).toBe(false);
    const unrelated = errorResponse({ severity: 'ERROR', code: '42P01', message: 'relation "x" does not exist' });
    expect(feed(t, [unrelated])).toEqual([unrelated]);
  });
});
