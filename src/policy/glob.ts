/**
 * Globs in policy rules: `*` matches any run of characters (also none), `?` exactly one; everything else is
 * literal and case-sensitive, because PostgreSQL names are (unquoted identifiers arrive lowercased).
 * Patterns only come from the config, so compiled patterns are cached without bound per distinct text.
 */
const compiled = new Map<string, RegExp>();

export function globToRegExp(pattern: string): RegExp {
  let re = compiled.get(pattern);
  if (re === undefined) {
    const body = pattern.replace(/[.+^${}()|[\]\\*?]/g, (c) => (c === '*' ? '.*' : c === '?' ? '.' : `\\${c}`));
    re = new RegExp(`^${body}$`, 's');
    compiled.set(pattern, re);
  }
  return re;
}

export function globMatch(pattern: string, value: string): boolean {
  return globToRegExp(pattern).test(value);
}

export function anyGlobMatches(patterns: readonly string[], value: string): boolean {
  return patterns.some((p) => globMatch(p, value));
}
