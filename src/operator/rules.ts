/**
 * The rules editor's view of the config file: the `policy` (and, once the model has it, `masking`) sections as
 * text. A put replaces exactly those sections, keeps the rest of the file byte for byte, validates the whole
 * result with the config loader, writes it atomically (temp file + rename, as editors do) and lets the config
 * watcher apply it. An invalid text is refused with its problems, and the file is left untouched.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, realpathSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isMap, isPair, isScalar, LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import type { PutRulesResult, RuleProblem } from '../contract/api.js';
import { ConfigError, parseConfig } from '../config/load.js';
import { ConfigSchema } from '../config/model.js';
import { ContractError } from './errors.js';

/** Top-level config keys the rules text holds: those of these the config model has. */
export const RULE_SECTIONS: readonly string[] = ['policy', 'masking'].filter((k) => k in ConfigSchema.shape);

export function rulesJsonSchema(): Record<string, unknown> {
  const shape = ConfigSchema.shape as unknown as Record<string, z.ZodType>;
  const picked = Object.fromEntries(RULE_SECTIONS.map((k) => [k, shape[k]!]));
  return z.toJSONSchema(z.strictObject(picked), { io: 'input', target: 'draft-2020-12', unrepresentable: 'any' });
}

export const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

/** Splits a config file into the rules text and the rest (both as written). */
export function splitRules(fileText: string): { rules: string; rest: string } {
  const doc = parseDocument(fileText, { keepSourceTokens: false });
  if (doc.errors.length > 0) throw new ContractError('unavailable', `the config file does not parse: ${doc.errors[0]!.message.split('\n')[0]}`);
  if (doc.contents === null) return { rules: '', rest: fileText };
  if (!isMap(doc.contents) || doc.contents.flow) throw new ContractError('unavailable', 'the config file is not a block mapping; edit it by hand');
  const lineStart = (offset: number) => fileText.lastIndexOf('\n', offset - 1) + 1;
  // A key's block starts at its line, or earlier at the comment lines directly above it.
  const blockStart = (offset: number) => {
    let start = lineStart(offset);
    while (start > 0) {
      const prev = lineStart(start - 1);
      if (!/^\s*#/.test(fileText.slice(prev, start))) break;
      start = prev;
    }
    return start;
  };
  const starts = doc.contents.items.map((pair) => {
    if (!isPair(pair) || !isScalar(pair.key) || !pair.key.range) throw new ContractError('unavailable', 'the config file has a complex top-level key; edit it by hand');
    return { key: String(pair.key.value), start: blockStart(pair.key.range[0]) };
  });
  let rules = '';
  let rest = fileText.slice(0, starts[0]?.start ?? fileText.length);
  starts.forEach((s, i) => {
    const chunk = fileText.slice(s.start, starts[i + 1]?.start ?? fileText.length);
    if (RULE_SECTIONS.includes(s.key)) rules += withNewline(chunk);
    else rest += chunk;
  });
  return { rules, rest };
}

export function readRulesText(path: string): string {
  return splitRules(readFileSync(path, 'utf8')).rules;
}

/** Validates and writes `rulesText` into the config file at `path`; `apply` makes the broker load it now. */
export function putRules(path: string, rulesText: string, baseSha256: string | undefined, apply: () => void): Omit<Extract<PutRulesResult, { applied: true }>, 'policyVersion'> | Extract<PutRulesResult, { applied: false }> {
  const real = realpathSync(path);
  const fileText = readFileSync(real, 'utf8');
  const { rules: current } = splitRules(fileText);
  if (baseSha256 !== undefined && baseSha256 !== sha256(current)) {
    const problems = checkRulesText(rulesText);
    if (problems.length > 0) return { applied: false, problems };
    throw new ContractError('conflict', 'the rules changed since you read them; reload them and apply your edit again');
  }
  const checked = validateRules(fileText, rulesText, path);
  if (!checked.ok) return { applied: false, problems: checked.problems };
  writeAtomically(real, checked.nextText);
  apply();
  return { applied: true, sha256: sha256(splitRules(checked.nextText).rules) };
}

/** What putRules would refuse, without writing anything (the editor's live validation). */
export function checkRules(path: string | null, rulesText: string): RuleProblem[] {
  if (path === null) return checkRulesText(rulesText);
  const checked = validateRules(readFileSync(realpathSync(path), 'utf8'), rulesText, path);
  return checked.ok ? [] : checked.problems;
}

/** The config file with `rulesText` in place of its rules, validated by the config loader as a whole. */
function validateRules(fileText: string, rulesText: string, path: string): { ok: true; nextText: string } | { ok: false; problems: RuleProblem[] } {
  const problems = checkRulesText(rulesText);
  if (problems.length > 0) return { ok: false, problems };
  const { rest } = splitRules(fileText);
  const head = withNewline(rest);
  const offset = head.length === 0 ? 0 : head.split('\n').length - 1;
  const nextText = head + withNewline(rulesText);
  try {
    parseConfig(nextText, path);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return {
      ok: false,
      problems: err.problems.map((p) =>
        p.line > offset
          ? { line: p.line - offset, column: p.column, key: p.key, reason: p.reason }
          : { line: 0, column: 0, key: p.key, reason: `elsewhere in the config file (line ${p.line}): ${p.reason}` }),
    };
  }
  return { ok: true, nextText };
}

/** Problems the rules text has on its own (YAML syntax, keys that are not rules); lines are the text's own. */
function checkRulesText(text: string): RuleProblem[] {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  const at = (offset: number) => {
    const { line, col } = lines.linePos(offset);
    return { line: Math.max(line, 1), column: Math.max(col, 1) };
  };
  if (doc.errors.length > 0) {
    return doc.errors.map((e) => ({ ...at(e.pos[0]), key: '', reason: `YAML syntax error: ${e.message.split('\n')[0]}` }));
  }
  if (doc.contents === null) return [];
  if (!isMap(doc.contents) || doc.contents.flow) {
    return [{ line: 1, column: 1, key: '', reason: `the rules must be a block mapping with the keys ${RULE_SECTIONS.join(', ')}` }];
  }
  return doc.contents.items.flatMap((pair) => {
    const key = isScalar(pair.key) ? String(pair.key.value) : '?';
    if (RULE_SECTIONS.includes(key)) return [];
    const offset = isScalar(pair.key) && pair.key.range ? pair.key.range[0] : 0;
    return [{ ...at(offset), key, reason: `"${key}" is not a rules section (allowed: ${RULE_SECTIONS.join(', ')}); other settings are edited in the config file` }];
  });
}

function withNewline(text: string): string {
  return text.length === 0 || text.endsWith('\n') ? text : `${text}\n`;
}

/** Temp file in the same directory, flushed, then renamed over the file: readers see the old or the new text. */
function writeAtomically(path: string, text: string): void {
  const mode = statSync(path).mode & 0o777;
  const tmp = join(dirname(path), `.${randomBytes(6).toString('hex')}.sluice-tmp`);
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, path);
  } catch (err) {
    try { closeSync(fd); } catch { /* already closed */ }
    try { unlinkSync(tmp); } catch { /* already renamed or never written */ }
    throw err;
  }
}
