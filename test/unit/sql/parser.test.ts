import { beforeAll, describe, expect, it } from 'vitest';
import { classify } from '../../../src/sql/classify.js';
import { DEFAULT_LIMITS, loadParser, parse } from '../../../src/sql/parser.js';
import { measureShape } from '../../../src/sql/shape.js';
import { wasmTrapCount } from '../../../src/sql/wasm.js';

beforeAll(loadParser);

const OK = 'SELECT abalance FROM pgbench_accounts WHERE aid = 1';
// Limits off: lets a statement reach the WASM parser so its own failure modes can be tested.
const NO_LIMITS = { maxBytes: 1 << 26, maxDepth: Number.MAX_SAFE_INTEGER, maxChain: Number.MAX_SAFE_INTEGER };

function expectWorks(): void {
  const r = parse(OK);
  expect(r.ok).toBe(true);
}

describe('parse: text the server could read differently', () => {
  it('refuses NUL', () => {
    expect(parse('SELECT 1\0; DROP TABLE t')).toMatchObject({ ok: false, code: '22021', position: 9 });
  });

  it('refuses U+FFFD (left by a lossy decode of invalid UTF-8)', () => {
    expect(parse("SELECT '\uFFFD'")).toMatchObject({ ok: false, code: '22021', position: 9 });
  });

  it('refuses lone surrogates, accepts paired ones', () => {
    expect(parse("SELECT '\uD800'")).toMatchObject({ ok: false, code: '22021' });
    expect(parse("SELECT '\uDC00x'")).toMatchObject({ ok: false, code: '22021' });
    expect(parse("SELECT '😀'").ok).toBe(true);
  });
});

describe('parse: limits before the parser runs', () => {
  it('refuses a statement over the size limit, counted in UTF-8 bytes', () => {
    const limits = { ...DEFAULT_LIMITS, maxBytes: 100 };
    expect(parse(`SELECT '${'x'.repeat(80)}'`, limits).ok).toBe(true);
    expect(parse(`SELECT '${'é'.repeat(50)}'`, limits)).toMatchObject({ ok: false, code: '54000' });
    const big = `SELECT '${'x'.repeat(DEFAULT_LIMITS.maxBytes)}'`;
    expect(parse(big)).toMatchObject({ ok: false, code: '54000' });
  });

  it('refuses 10,000 nested parentheses before the parser sees them, and the next statement parses', () => {
    const r = parse(`SELECT ${'('.repeat(10_000)}1${')'.repeat(10_000)}`);
    expect(r).toMatchObject({ ok: false, code: '54001', position: 264 }); // stopped at the 257th '('
    expect(!r.ok && r.message).toContain('too deeply nested');
    expectWorks();
  });

  it('refuses 100,000 unclosed parentheses and brackets', () => {
    expect(parse(`SELECT ${'('.repeat(100_000)}`)).toMatchObject({ ok: false, code: '54001' });
    expect(parse(`SELECT ARRAY${'['.repeat(100_000)}`)).toMatchObject({ ok: false, code: '54001' });
    expectWorks();
  });

  it('refuses long left-deep chains (operators, casts, UNION, JOIN) that would overflow the parser', () => {
    const n = 9_000;
    for (const text of [
      `SELECT ${'1+'.repeat(n)}1`,
      `SELECT 1${'::int'.repeat(n)}`,
      `SELECT 1${' UNION SELECT 1'.repeat(n)}`,
      `SELECT * FROM t0${' JOIN t ON true'.repeat(n)}`,
    ]) {
      expect(parse(text), text.slice(0, 30)).toMatchObject({ ok: false, code: '54001' });
    }
    expectWorks();
  });

  it('lets ordinary long statements through: wide IN lists, long AND chains, big CASEs, bulk VALUES', () => {
    const list = Array.from({ length: 5_000 }, (_, i) => i).join(', ');
    expect(parse(`SELECT * FROM t WHERE id IN (${list})`).ok).toBe(true);
    expect(parse(`SELECT * FROM t WHERE ${Array.from({ length: 2_000 }, (_, i) => `c${i} = ${i}`).join(' AND ')}`).ok).toBe(true);
    expect(parse(`SELECT CASE ${Array.from({ length: 2_000 }, (_, i) => `WHEN x = ${i} THEN ${i}`).join(' ')} END FROM t`).ok).toBe(true);
    expect(parse(`INSERT INTO t VALUES ${Array.from({ length: 5_000 }, (_, i) => `(${i}, 'v${i}')`).join(', ')}`).ok).toBe(true);
    expect(parse(`SELECT ${'('.repeat(200)}1${')'.repeat(200)}`).ok).toBe(true);
  });

  it('does not count brackets inside strings, quoted identifiers, dollar quotes or comments', () => {
    const hidden = `SELECT '${'('.repeat(1000)}', "${'['.repeat(1000)}", $q$${'('.repeat(1000)}$q$ /* ${'('.repeat(1000)} */ -- ${'('.repeat(1000)}`;
    expect(measureShape(hidden, 256, 4000)).toMatchObject({ depth: 0 });
    expect(measureShape(`SELECT E'\\'${'('.repeat(300)}'`, 256, 4000)).toMatchObject({ depth: 0 });
  });
});

describe('parse: failures of the parser itself', () => {
  it('refuses a syntax error with the parser\'s message and position', () => {
    expect(parse('SELECT * FROM t WHERE')).toMatchObject({
      ok: false,
      code: '42601',
      message: 'syntax error at end of input',
      position: 22,
    });
  });

  it('refuses the parser\'s own "memory exhausted" (bison stack) and keeps working', () => {
    const r = parse(`SELECT ${'- '.repeat(20_000)}1`, NO_LIMITS);
    expect(r).toMatchObject({ ok: false, code: '42601' });
    expect(!r.ok && r.message).toContain('memory exhausted');
    expectWorks();
  });

  it('refuses a statement that traps the WASM parser (stack overflow), and the next statement parses', async () => {
    const deep = `SELECT ${'(SELECT '.repeat(3_000)}1${')'.repeat(3_000)}`;
    const traps = wasmTrapCount();
    const r = parse(deep, NO_LIMITS);
    expect(r).toMatchObject({ ok: false, code: '54001' });
    expect(!r.ok && r.message).toContain('Maximum call stack size exceeded');
    expect(wasmTrapCount()).toBe(traps + 1);
    expectWorks(); // served by the spare instance, synchronously
    await loadParser();
  });

  it('survives many traps (a single reused instance dies after ~35 and sets process.exitCode)', async () => {
    const deep = `SELECT ${'(SELECT '.repeat(3_000)}1${')'.repeat(3_000)}`;
    const exitCode = process.exitCode;
    for (let i = 0; i < 60; i++) {
      expect(parse(deep, NO_LIMITS)).toMatchObject({ ok: false, code: '54001' });
      expect(classify(`${OK} + ${i}`, { cache: false }).ok).toBe(true);
      await loadParser();
    }
    expect(process.exitCode).toBe(exitCode);
  });

  it('refuses with 57P03 while both instances are being replaced, then recovers', async () => {
    const deep = `SELECT ${'(SELECT '.repeat(3_000)}1${')'.repeat(3_000)}`;
    parse(deep, NO_LIMITS);
    parse(deep, NO_LIMITS);
    expect(parse(OK)).toMatchObject({ ok: false, code: '57P03' });
    await loadParser();
    expectWorks();
  });
});
