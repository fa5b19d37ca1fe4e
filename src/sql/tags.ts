import { wasmScan } from './wasm.js';

/**
 * sqlcommenter-style tags (a comment holding `tool='x',run='y'`, keys and values URL-encoded), so an agent's tool
 * call or run can be found in the audit log later. Comments are located by PostgreSQL's own lexer: a regex over
 * the whole text cannot tell a comment from a string or a dollar-quoted body that looks like one. Only the
 * comment body is split with a regex.
 * https://google.github.io/sqlcommenter/spec/
 */

const MAX_TAGS = 32;
const MAX_KEY = 64;
const MAX_VALUE = 512;

// key='value' pairs separated by commas; values escape ' as \' (sqlcommenter "meta" escaping).
const PAIR = /^\s*([^=,'\s]+)\s*=\s*'((?:[^'\\]|\\.)*)'\s*(?:,|$)/;

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Pairs of one comment body, or null when the body is not a tag list (an ordinary comment). */
export function parseTagComment(body: string): [string, string][] | null {
  const pairs: [string, string][] = [];
  let rest = body.trim();
  while (rest.length > 0) {
    const m = PAIR.exec(rest);
    if (!m) return null;
    pairs.push([decode(m[1]!), decode(m[2]!.replace(/\\(.)/g, '$1'))]);
    rest = rest.slice(m[0].length);
  }
  return pairs.length > 0 ? pairs : null;
}

/**
 * Tags from every comment in `text`. The lexer only runs when the text could hold a comment, and not on texts
 * longer than `maxLength` (PostgreSQL's lexer through WASM takes ~0.4 s on a 1 MiB INSERT).
 */
export function readTags(text: string, maxLength: number): Record<string, string> {
  const tags: Record<string, string> = {};
  if (!text.includes('/*') && !text.includes('--')) return tags;
  if (text.length > maxLength) return tags;
  const tokens = wasmScan(text);
  if (!tokens) return tags;
  let count = 0;
  for (const t of tokens) {
    let body: string;
    if (t.tokenName === 'C_COMMENT') body = t.text.slice(2, -2);
    else if (t.tokenName === 'SQL_COMMENT') body = t.text.slice(2);
    else continue;
    for (const [key, value] of parseTagComment(body) ?? []) {
      // '__proto__' cannot be an own key of a plain object.
      if (count >= MAX_TAGS || key.length > MAX_KEY || key === '__proto__' || Object.hasOwn(tags, key)) continue;
      tags[key] = value.length > MAX_VALUE ? value.slice(0, MAX_VALUE) : value;
      count++;
    }
  }
  return tags;
}
