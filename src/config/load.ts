/**
 * Reads and validates the config file. Every problem is reported as FILE:LINE:COL: reason, one per line,
 * and nothing is half-applied: either the whole file is valid or `ConfigError` is thrown.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { locate, position, type KeyPath } from './locate.js';
import { ConfigSchema, type SluiceConfig } from './model.js';
import { allowedKeysAt, closestKey } from './keys.js';
import { resolveOidcPaths } from '../identity/oidc-model.js';

export { resolveTargetPassword, TargetPasswordError } from './password.js';

export interface ConfigProblem {
  line: number;
  column: number;
  /** Dotted key path of the offending setting (`targets[0].tls.mode`); empty for the whole file. */
  key: string;
  reason: string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  /** All problems, in source order. The `line`/`column`/`reason` fields repeat the first one. */
  readonly problems: readonly ConfigProblem[];
  /** The config file path as given to `loadConfig`/`parseConfig`. */
  readonly path: string;
  readonly line: number;
  readonly column: number;
  readonly reason: string;

  constructor(path: string, problems: readonly ConfigProblem[]) {
    const sorted = [...problems].sort((a, b) => a.line - b.line || a.column - b.column);
    const first = sorted[0] ?? { line: 1, column: 1, key: '', reason: 'invalid config' };
    super(sorted.map((p) => `${path}:${p.line}:${p.column}: ${p.reason}`).join('\n'));
    this.problems = sorted.length > 0 ? sorted : [first];
    this.path = path;
    this.line = first.line;
    this.column = first.column;
    this.reason = first.reason;
  }
}

/** Reads, parses and validates a config file; relative paths in it become absolute (against its directory). */
export function loadConfig(path: string): SluiceConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (code ?? String(err));
    throw new ConfigError(path, [{ line: 1, column: 1, key: '', reason: `cannot read config file: ${why}` }]);
  }
  return parseConfig(text, path);
}

/** Parses and validates config text; `sourcePath` names it in errors and anchors relative paths. */
export function parseConfig(text: string, sourcePath: string): SluiceConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      sourcePath,
      doc.errors.map((e) => ({ ...position(lineCounter, e.pos[0]), key: '', reason: `YAML syntax error: ${firstLine(e.message)}` })),
    );
  }

  let data: unknown;
  try {
    // maxAliasCount bounds alias expansion ("billion laughs").
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError(sourcePath, [{ line: 1, column: 1, key: '', reason: `YAML error: ${firstLine(String(err))}` }]);
  }

  const result = ConfigSchema.safeParse(data, { error: describeIssue });
  if (!result.success) {
    throw new ConfigError(sourcePath, result.error.issues.flatMap((issue) => toProblems(issue, doc, lineCounter, data)));
  }
  return resolvePaths(result.data, dirname(resolve(sourcePath)));
}

function resolvePaths(config: SluiceConfig, baseDir: string): SluiceConfig {
  const abs = (p: string) => resolve(baseDir, p);
  return {
    ...config,
    dataDir: abs(config.dataDir),
    tls: config.tls && { cert: abs(config.tls.cert), key: abs(config.tls.key) },
    targets: config.targets.map((t) => ({
      ...t,
      tls: t.tls.ca === undefined ? t.tls : { ...t.tls, ca: abs(t.tls.ca) },
      password: t.password && 'file' in t.password ? { file: abs(t.password.file) } : t.password,
    })),
    oidc: config.oidc && resolveOidcPaths(config.oidc, abs),
  };
}

/**
 * Per-parse messages for zod's built-in issues. Only the type of the input is ever named, never its value:
 * a misplaced secret must not end up in an error message or a log.
 */
function describeIssue(issue: z.core.$ZodRawIssue): string | undefined {
  if (issue.code === 'invalid_type') {
    if (issue.input === undefined) return 'required key is missing';
    return `expected ${issue.expected === 'object' ? 'a mapping' : issue.expected === 'array' ? 'a list' : `a ${issue.expected}`}, got ${kindOf(issue.input)}`;
  }
  return undefined;
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `a ${typeof value}`;
}

function toProblems(issue: z.core.$ZodIssue, doc: Document, lineCounter: LineCounter, data: unknown): ConfigProblem[] {
  const path: KeyPath = issue.path.map((s) => (typeof s === 'symbol' ? String(s) : s));

  if (issue.code === 'unrecognized_keys') {
    const allowed = allowedKeysAt(ConfigSchema, path) ?? [];
    return issue.keys.map((key) => {
      const suggestion = closestKey(key, allowed);
      const hint =
        suggestion !== undefined ? `; did you mean "${suggestion}"?` : allowed.length > 0 ? `; allowed keys: ${allowed.join(', ')}` : '';
      return {
        ...locate(doc, lineCounter, [...path, key], 'key'),
        key: formatKeyPath([...path, key]),
        reason: `${prefix([...path, key])}unknown key "${key}"${hint}`,
      };
    });
  }

  let reason = issue.message;
  if (path.length === 0 && issue.code === 'invalid_type') {
    reason =
      data === null || data === undefined
        ? 'the config file is empty; it needs at least a `targets:` list'
        : `the config must be a mapping of settings (listen, targets, ...), got ${kindOf(data)}`;
  }
  return [{ ...locate(doc, lineCounter, path), key: formatKeyPath(path), reason: `${prefix(path)}${reason}` }];
}

function prefix(path: KeyPath): string {
  return path.length === 0 ? '' : `${formatKeyPath(path)}: `;
}

/** `['targets', 0, 'tls', 'mode']` -> `targets[0].tls.mode`. */
export function formatKeyPath(path: KeyPath): string {
  return path.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');
}

function firstLine(message: string): string {
  return message.split('\n', 1)[0]?.trim() ?? message;
}
