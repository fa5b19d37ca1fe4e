/**
 * Knows which keys the model allows at a key path, so an unknown key can be answered with
 * "did you mean ...?" instead of a bare rejection.
 */
import type { z } from 'zod';
import type { KeyPath } from './locate.js';

type Schema = z.core.$ZodType;

/** Keys allowed in the object at `path`, or undefined when the path does not lead to an object. */
export function allowedKeysAt(schema: Schema, path: KeyPath): string[] | undefined {
  const current = unwrap(schema);
  const def = current._zod.def;
  if (def.type === 'union') {
    // A union of objects (the password source) allows the keys of each option.
    const keys = (def as z.core.$ZodUnionDef).options.flatMap((option) => allowedKeysAt(option, path) ?? []);
    return keys.length > 0 ? [...new Set(keys)] : undefined;
  }
  const [segment, ...rest] = path;
  if (segment === undefined) return def.type === 'object' ? Object.keys((def as z.core.$ZodObjectDef).shape) : undefined;
  if (def.type === 'object') {
    const next = (def as z.core.$ZodObjectDef).shape[String(segment)];
    return next === undefined ? undefined : allowedKeysAt(next, rest);
  }
  if (def.type === 'array') return allowedKeysAt((def as z.core.$ZodArrayDef).element, rest);
  return undefined;
}

/** Strips wrappers (optional, default, prefault, pipe) that do not change an object's keys. */
function unwrap(schema: Schema): Schema {
  let current = schema;
  for (;;) {
    const def = current._zod.def;
    if ('innerType' in def) current = def.innerType as Schema;
    else if (def.type === 'pipe') current = (def as z.core.$ZodPipeDef).in;
    else return current;
  }
}

/** The allowed key closest to `key` (case-insensitive match or edit distance <= 2), if any. */
export function closestKey(key: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of allowed) {
    const d = candidate.toLowerCase() === key.toLowerCase() ? 0 : editDistance(key, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min((previous[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
    }
    previous = row;
  }
  return previous[b.length] ?? Math.max(a.length, b.length);
}
