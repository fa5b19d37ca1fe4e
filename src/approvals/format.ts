/**
 * Shows a statement to an operator so that what they read is what runs. An agent (or whoever feeds it) can hide
 * text from a human reviewer with characters that render as nothing, reorder the line ("Trojan Source",
 * CVE-2021-42574), look like a plain space while PostgreSQL reads them as part of an identifier, or drive the
 * operator's terminal (ESC sequences, a carriage return that overwrites the line). Each such character becomes a
 * visible mark.
 *
 * Chosen deliberately:
 * - Kept as they are: space, tab and line feed (PostgreSQL's lexer reads them as whitespace and they hide
 *   nothing), and CR directly before LF (a Windows line end).
 * - Marked: every other C0/C1 control (NUL cannot be in a statement but is marked anyway; a lone CR, ESC, DEL,
 *   form feed and vertical tab), bidi controls and marks, zero-width and other default-ignorable characters,
 *   variation selectors and tag characters, spaces other than U+0020 (NBSP, en space, ideographic space: PostgreSQL
 *   lexes these as identifier characters, not whitespace), line/paragraph separators, private-use and
 *   noncharacter code points, and the marker bracket ⟦ itself so a statement cannot forge a mark.
 * - Not marked: letters from other scripts (homoglyphs such as Cyrillic "а"). They are visible glyphs, not hidden
 *   ones; flagging mixed scripts in names is future work.
 */
import type { FormattedStatement, VisibleSegment } from '../contract/api.js';

type Category = Extract<VisibleSegment, { kind: 'mark' }>['category'];

const NAMES: Readonly<Record<number, string>> = {
  0x00: 'NUL', 0x07: 'BEL', 0x08: 'BS', 0x0b: 'VT', 0x0c: 'FF', 0x0d: 'CR', 0x1b: 'ESC', 0x7f: 'DEL',
  0x85: 'NEL', 0xa0: 'NO-BREAK SPACE', 0xad: 'SOFT HYPHEN', 0x34f: 'COMBINING GRAPHEME JOINER',
  0x61c: 'ARABIC LETTER MARK', 0x115f: 'HANGUL CHOSEONG FILLER', 0x1160: 'HANGUL JUNGSEONG FILLER',
  0x1680: 'OGHAM SPACE MARK', 0x180e: 'MONGOLIAN VOWEL SEPARATOR',
  0x200b: 'ZERO WIDTH SPACE', 0x200c: 'ZERO WIDTH NON-JOINER', 0x200d: 'ZERO WIDTH JOINER',
  0x200e: 'LEFT-TO-RIGHT MARK', 0x200f: 'RIGHT-TO-LEFT MARK', 0x2028: 'LINE SEPARATOR', 0x2029: 'PARAGRAPH SEPARATOR',
  0x202a: 'LEFT-TO-RIGHT EMBEDDING', 0x202b: 'RIGHT-TO-LEFT EMBEDDING', 0x202c: 'POP DIRECTIONAL FORMATTING',
  0x202d: 'LEFT-TO-RIGHT OVERRIDE', 0x202e: 'RIGHT-TO-LEFT OVERRIDE', 0x202f: 'NARROW NO-BREAK SPACE',
  0x205f: 'MEDIUM MATHEMATICAL SPACE', 0x2060: 'WORD JOINER', 0x2061: 'FUNCTION APPLICATION',
  0x2062: 'INVISIBLE TIMES', 0x2063: 'INVISIBLE SEPARATOR', 0x2064: 'INVISIBLE PLUS',
  0x2066: 'LEFT-TO-RIGHT ISOLATE', 0x2067: 'RIGHT-TO-LEFT ISOLATE', 0x2068: 'FIRST STRONG ISOLATE',
  0x2069: 'POP DIRECTIONAL ISOLATE', 0x3000: 'IDEOGRAPHIC SPACE', 0x3164: 'HANGUL FILLER',
  0xfeff: 'ZERO WIDTH NO-BREAK SPACE', 0xffa0: 'HALFWIDTH HANGUL FILLER', 0x27e6: 'MARK BRACKET',
};

const BIDI = new Set([0x61c, 0x200e, 0x200f, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069]);

/** Why a code point is marked, or null when it is shown as itself. */
export function markCategory(cp: number, next: number | undefined): Category | null {
  if (cp === 0x09 || cp === 0x0a) return null;
  if (cp === 0x0d) return next === 0x0a ? null : 'control';
  if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) return 'control';
  if (cp < 0x7f) return null; // printable ASCII: the common case, decided in one comparison
  if (BIDI.has(cp)) return 'bidi';
  if (cp === 0x27e6) return 'marker';
  if (cp === 0xa0 || cp === 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp === 0x2028 || cp === 0x2029 ||
    cp === 0x202f || cp === 0x205f || cp === 0x3000) return 'space';
  if (cp === 0xad || cp === 0x34f || cp === 0x115f || cp === 0x1160 || cp === 0x17b4 || cp === 0x17b5 ||
    (cp >= 0x180b && cp <= 0x180f) || (cp >= 0x200b && cp <= 0x200d) || (cp >= 0x2060 && cp <= 0x2064) ||
    cp === 0x2065 || (cp >= 0x206a && cp <= 0x206f) || cp === 0x3164 || (cp >= 0xfe00 && cp <= 0xfe0f) ||
    cp === 0xfeff || cp === 0xffa0 || (cp >= 0xfff0 && cp <= 0xfffb) || (cp >= 0x1bca0 && cp <= 0x1bca3) ||
    (cp >= 0x1d173 && cp <= 0x1d17a) || (cp >= 0xe0000 && cp <= 0xe0fff)) return 'invisible';
  // Private use and noncharacters render as nothing or as a box depending on the font.
  if ((cp >= 0xe000 && cp <= 0xf8ff) || cp >= 0xf0000 || (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) return 'invisible';
  if (cp >= 0xd800 && cp <= 0xdfff) return 'control'; // a lone surrogate (not from valid UTF-8, but never shown raw)
  return null;
}

export function codePointLabel(cp: number): string {
  return `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

function nameOf(cp: number, category: Category): string {
  const known = NAMES[cp];
  if (known) return known;
  if (cp >= 0xe0000 && cp <= 0xe007f) return 'TAG';
  if ((cp >= 0xfe00 && cp <= 0xfe0f) || cp >= 0xe0100) return 'VARIATION SELECTOR';
  if (cp >= 0x2000 && cp <= 0x200a) return 'SPACE';
  if (category === 'control') return cp < 0x20 ? 'CONTROL' : 'C1 CONTROL';
  if ((cp >= 0xe000 && cp <= 0xf8ff) || cp >= 0xf0000) return 'PRIVATE USE';
  return 'INVISIBLE';
}

const WARNINGS: Readonly<Record<Category, string>> = {
  bidi: 'contains bidirectional control characters (they can reorder what you read)',
  invisible: 'contains invisible characters',
  control: 'contains control characters',
  space: 'contains spaces other than U+0020 (PostgreSQL reads them as part of a name, not as whitespace)',
  marker: 'contains the ⟦ character, shown as a mark',
};

/** The statement with every hiding character made visible (see the file comment for the rules). */
export function formatStatement(text: string): FormattedStatement {
  const segments: VisibleSegment[] = [];
  const seen = new Set<Category>();
  let plain = '';
  let run = 0; // start of the current run of unmarked text (UTF-16 index)
  for (let i = 0; i < text.length; ) {
    const cp = text.codePointAt(i)!;
    const width = cp > 0xffff ? 2 : 1;
    const next = text.codePointAt(i + width);
    const category = markCategory(cp, next);
    if (category !== null) {
      if (i > run) segments.push({ kind: 'text', text: text.slice(run, i) });
      const codePoint = codePointLabel(cp);
      const name = nameOf(cp, category);
      segments.push({ kind: 'mark', codePoint, name, category });
      seen.add(category);
      plain += text.slice(run, i);
      plain += `⟦${codePoint} ${name}⟧`;
      // A line separator or lone CR still ends the line for the reader; keep the line break after its mark.
      if (cp === 0x2028 || cp === 0x2029 || cp === 0x0d || cp === 0x85) plain += '\n';
      run = i + width;
    }
    i += width;
  }
  if (run < text.length) {
    segments.push({ kind: 'text', text: text.slice(run) });
    plain += text.slice(run);
  }
  const warnings = (['bidi', 'invisible', 'control', 'space', 'marker'] as const).filter((c) => seen.has(c)).map((c) => WARNINGS[c]);
  return { text: plain, segments, warnings };
}
