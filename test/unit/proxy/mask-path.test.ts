import { beforeAll, describe, expect, it } from 'vitest';
import { errorResponse, parseErrorFields } from '../../../src/protocol/messages.js';
import { readRowDescription, scrubEcho } from '../../../src/proxy/mask-results.js';
import { SearchPathTracker } from '../../../src/proxy/mask-path.js';
import { classify } from '../../../src/sql/classify.js';
import { loadParser } from '../../../src/sql/parser.js';

beforeAll(() => loadParser());

const run = (t: SearchPathTracker, sql: string, simple = true) => {
  const c = classify(sql);
  if (!c.ok) throw new Error(c.message);
  t.onAllowed(c.statements, simple);
};
const I = 0x49;
const T = 0x54;

describe('SearchPathTracker', () => {
  it('starts from the startup parameter, else the role default', () => {
    expect(new SearchPathTracker('app', 'other, "$user"').current()).toEqual(['other', 'app']);
    const t = new SearchPathTracker('app', null);
    expect(t.current()).toBeNull();
    t.setServerDefault('"$user", public');
    expect(t.current()).toEqual(['app', 'public']);
  });

  it('a plain SET alone in an idle session is certain once its cycle ends idle without error', () => {
    const t = new SearchPathTracker('app', 'public');
    run(t, 'SET search_path = other');
    expect(t.current()).toEqual({ anyOf: [['public'], ['other']] });
    t.onReady(I);
    expect(t.current()).toEqual(['other']);
  });

  it('a lone SET that failed changed nothing; SET LOCAL ends with its transaction', () => {
    const failed = new SearchPathTracker('app', 'public');
    run(failed, 'SET search_path = other');
    failed.onServerError();
    failed.onReady(I);
    expect(failed.current()).toEqual(['public']);

    const local = new SearchPathTracker('app', 'public');
    local.onReady(T);
    run(local, 'SET LOCAL search_path = other');
    expect(local.current()).toEqual({ anyOf: [['public'], ['other']] });
    local.onReady(T);
    expect(local.current()).toEqual({ anyOf: [['public'], ['other']] });
    local.onReady(I);
    expect(local.current()).toEqual(['public']);
    const localFn = new SearchPathTracker('app', 'public');
    run(localFn, "SELECT set_config('search_path', 'other', true)");
    localFn.onReady(I);
    expect(localFn.current()).toEqual(['public']);
  });

  it('stays widened inside a transaction, in the extended protocol, behind unanswered cycles, after user code', () => {
    const inTx = new SearchPathTracker('app', 'public');
    inTx.onReady(T);
    run(inTx, 'SET search_path = other');
    inTx.onReady(I);
    expect(inTx.current()).toEqual({ anyOf: [['public'], ['other']] });

    // A WHERE may keep set_config() from running: not certain.
    const where = new SearchPathTracker('app', 'public');
    run(where, "SELECT set_config('search_path', 'other', false) WHERE false");
    where.onReady(I);
    expect(where.current()).toEqual({ anyOf: [['public'], ['other']] });

    // The ReadyForQuery of an earlier cycle (not quiet) concludes nothing; the SET's own one does.
    const piped = new SearchPathTracker('app', 'public');
    run(piped, 'SET search_path = other');
    piped.onReady(I, false);
    expect(piped.current()).toEqual({ anyOf: [['public'], ['other']] });
    piped.onReady(I, true);
    expect(piped.current()).toEqual(['other']);

    const opaque = new SearchPathTracker('app', 'public');
    opaque.onAllowed([], true, true);
    opaque.onReady(I);
    expect(opaque.current()).toBeNull();
    run(opaque, 'SET search_path = public');
    opaque.onReady(I);
    expect(opaque.current()).toEqual(['public']);

    const ext = new SearchPathTracker('app', 'public');
    run(ext, 'SET search_path = other', false);
    ext.onReady(I);
    expect(ext.current()).toEqual({ anyOf: [['public'], ['other']] });
  });

  it('a value known only at run time makes it unknown; RESET goes back to the session default', () => {
    const t = new SearchPathTracker('app', 'public');
    run(t, "SELECT set_config('search_path', $1, false)");
    expect(t.current()).toBeNull();
    const r = new SearchPathTracker('app', 'public');
    run(r, 'SET search_path = other');
    r.onReady(I);
    run(r, 'RESET search_path');
    expect(r.current()).toEqual({ anyOf: [['other'], ['public']] });
    r.onReady(I);
    expect(r.current()).toEqual(['public']);
  });
});

describe('scrubEcho', () => {
  it('drops the detail of an integrity error and the quoted value of a data error', () => {
    const integrity = errorResponse({ severity: 'ERROR', code: '23514', message: 'new row violates check constraint "c"', detail: 'Failing row contains (1, secret).' });
    const f = parseErrorFields(scrubEcho(integrity));
    expect(f.D).not.toContain('secret');
    expect(f.M).toBe('new row violates check constraint "c"');
    const data = parseErrorFields(scrubEcho(errorResponse({ severity: 'ERROR', code: '22P02', message: 'invalid input syntax for type integer: "secret"' })));
    expect(data.M).not.toContain('secret');
    expect(data.C).toBe('22P02');
  });

  it('leaves other errors as the same bytes', () => {
    const e = errorResponse({ severity: 'ERROR', code: '42P01', message: 'relation "x" does not exist' });
    expect(scrubEcho(e)).toBe(e);
  });
});

it('readRowDescription reads provenance and formats, and refuses a malformed one', () => {
  const name = Buffer.from('email\0');
  const body = Buffer.alloc(2 + name.length + 18);
  body.writeInt16BE(1, 0);
  name.copy(body, 2);
  let at = 2 + name.length;
  at = body.writeUInt32BE(16384, at);
  at = body.writeInt16BE(2, at);
  at = body.writeUInt32BE(25, at);
  at = body.writeInt16BE(-1, at);
  at = body.writeInt32BE(-1, at);
  body.writeInt16BE(1, at);
  const frame = Buffer.concat([Buffer.from([0x54, 0, 0, 0, 0]), body]);
  frame.writeInt32BE(frame.length - 1, 1);
  expect(readRowDescription(frame)).toEqual([{ name: 'email', tableOid: 16384, attnum: 2, typeOid: 25, format: 1 }]);
  expect(readRowDescription(frame.subarray(0, frame.length - 1))).toBeNull();
});
