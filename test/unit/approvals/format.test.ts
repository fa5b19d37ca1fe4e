import { describe, expect, it } from 'vitest';
import { formatStatement } from '../../../src/approvals/format.js';

describe('formatStatement', () => {
  it('leaves ordinary SQL alone, tabs and newlines included', () => {
    const sql = "SELECT id,\tname\nFROM users\r\nWHERE name = 'Zoë 日本'";
    const f = formatStatement(sql);
    expect(f.text).toBe(sql);
    expect(f.segments).toEqual([{ kind: 'text', text: sql }]);
    expect(f.warnings).toEqual([]);
  });

  it('marks bidi controls (Trojan Source) and says what they do', () => {
    const f = formatStatement("DELETE FROM t WHERE owner = 'me\u202E\u2066' -- \u2069\u2066safe");
    expect(f.text).toBe("DELETE FROM t WHERE owner = 'me⟦U+202E RIGHT-TO-LEFT OVERRIDE⟧⟦U+2066 LEFT-TO-RIGHT ISOLATE⟧' -- ⟦U+2069 POP DIRECTIONAL ISOLATE⟧⟦U+2066 LEFT-TO-RIGHT ISOLATE⟧safe");
    expect(f.segments.filter((s) => s.kind === 'mark').map((s) => s.kind === 'mark' && s.category)).toEqual(['bidi', 'bidi', 'bidi', 'bidi']);
    expect(f.warnings).toEqual(['contains bidirectional control characters (they can reorder what you read)']);
  });

  it.each([
    ['\u200B', 'U+200B ZERO WIDTH SPACE', 'invisible'],
    ['\uFEFF', 'U+FEFF ZERO WIDTH NO-BREAK SPACE', 'invisible'],
    ['\u00AD', 'U+00AD SOFT HYPHEN', 'invisible'],
    ['\u{E0041}', 'U+E0041 TAG', 'invisible'],
    ['\uFE0F', 'U+FE0F VARIATION SELECTOR', 'invisible'],
    ['\uE000', 'U+E000 PRIVATE USE', 'invisible'],
    ['\u0000', 'U+0000 NUL', 'control'],
    ['\u001B', 'U+001B ESC', 'control'],
    ['\u007F', 'U+007F DEL', 'control'],
    ['\u0085', 'U+0085 NEL', 'control'],
    ['\u000C', 'U+000C FF', 'control'],
    ['\u00A0', 'U+00A0 NO-BREAK SPACE', 'space'],
    ['\u3000', 'U+3000 IDEOGRAPHIC SPACE', 'space'],
    ['\u2009', 'U+2009 SPACE', 'space'],
  ])('marks %j as ⟦%s⟧', (ch, label, category) => {
    const f = formatStatement(`SELECT${ch}1`);
    expect(f.text.startsWith(`SELECT⟦${label}⟧`)).toBe(true);
    expect(f.segments[1]).toMatchObject({ kind: 'mark', category });
    expect(f.segments.map((s) => (s.kind === 'text' ? s.text : '#')).join('')).toBe('SELECT#1');
  });

  it('marks a lone carriage return (it would overwrite the line in a terminal) but keeps CRLF', () => {
    const f = formatStatement("SELECT 'harmless'\rDROP TABLE users");
    expect(f.text).toBe("SELECT 'harmless'⟦U+000D CR⟧\nDROP TABLE users");
    expect(formatStatement('SELECT 1\r\n').text).toBe('SELECT 1\r\n');
  });

  it('marks the mark bracket itself, so a statement cannot forge a mark', () => {
    const f = formatStatement("SELECT '⟦U+200B ZERO WIDTH SPACE⟧'");
    expect(f.text).toBe("SELECT '⟦U+27E6 MARK BRACKET⟧U+200B ZERO WIDTH SPACE⟧'");
    expect(f.warnings.join()).toMatch(/⟦/);
  });

  it('keeps astral characters that are visible (emoji) and counts surrogate pairs as one', () => {
    const f = formatStatement("SELECT '😀\u{E0001}'");
    expect(f.text).toBe("SELECT '😀⟦U+E0001 TAG⟧'");
  });
});
