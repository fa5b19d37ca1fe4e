import { describe, expect, it } from 'vitest';
import type { StatementResult } from '../../../src/audit/audit-log.js';
import { errorResponse } from '../../../src/protocol/messages.js';
import { CompletionTracker } from '../../../src/proxy/completions.js';

const frame = (code: string, body = '') => {
  const b = Buffer.from(body, 'utf8');
  const head = Buffer.alloc(5);
  head[0] = code.charCodeAt(0);
  head.writeInt32BE(4 + b.length, 1);
  return Buffer.concat([head, b]);
};
const tag = (t: string) => frame('C', `${t}\0`);

function track(): { t: CompletionTracker; done: [number, StatementResult][] } {
  const done: [number, StatementResult][] = [];
  return { t: new CompletionTracker((id, r) => done.push([id, r])), done };
}

describe('CompletionTracker', () => {
  it('ends an Execute at CommandComplete with returned rows, or affected rows from the tag', () => {
    const { t, done } = track();
    t.expect({ kind: 'execute', id: 1 }, 0);
    t.expect({ kind: 'execute', id: 2 }, 0);
    t.expect({ kind: 'cycle' }, 0);
    for (const f of [frame('1'), frame('2'), frame('D', 'xx'), frame('D', 'yy'), tag('SELECT 2'), frame('2'), tag('UPDATE 12'), frame('Z', 'I')]) t.onFrame(f);
    expect(done.map(([id, r]) => [id, r.rows, r.bytes, r.errorCode])).toEqual([[1, 2, 14, null], [2, 12, 0, null]]);
  });

  it('after an error, the Executes the server skipped up to Sync are recorded as not executed', () => {
    const { t, done } = track();
    t.expect({ kind: 'execute', id: 1 }, 0);
    t.expect({ kind: 'execute', id: 2 }, 0);
    t.expect({ kind: 'cycle' }, 0);
    t.expect({ kind: 'query', id: 3 }, 0);
    for (const f of [errorResponse({ severity: 'ERROR', code: '22012', message: 'division by zero' }), frame('Z', 'I'), frame('D', 'a'), tag('SELECT 1'), frame('D', 'b'), tag('SELECT 1'), frame('Z', 'I')]) t.onFrame(f);
    expect(done.map(([id, r]) => [id, r.rows, r.errorCode, r.errorMessage?.slice(0, 12)])).toEqual([
      [1, 0, '22012', 'division by '],
      [2, 0, '', 'not executed'],
      [3, 2, null, undefined],
    ]);
  });

  it('a refused message (cycle) consumes its ReadyForQuery without a record', () => {
    const { t, done } = track();
    t.expect({ kind: 'cycle' }, 0);
    t.expect({ kind: 'query', id: 9 }, 0);
    for (const f of [errorResponse({ severity: 'ERROR', code: '42501', message: 'refused' }), frame('Z', 'I'), tag('INSERT 0 3'), frame('Z', 'I')]) t.onFrame(f);
    expect(done.map(([id, r]) => [id, r.rows, r.errorCode])).toEqual([[9, 3, null]]);
  });
});
