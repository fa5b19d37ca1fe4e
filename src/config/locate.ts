/**
 * Maps a config key path (as zod reports it) back to a line and column in the YAML source, so that every
 * problem can be shown as FILE:LINE:COL like a compiler error.
 */
import { isMap, isPair, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';

export type KeyPath = readonly (string | number)[];

export interface SourcePosition {
  line: number;
  column: number;
}

/** What to point at when the node exists: its value (a wrong value) or its key (an unknown key). */
export type LocateTarget = 'value' | 'key';

interface Step {
  /** The key node of the map pair that led here, if the step went through a map. */
  key: Node | undefined;
  value: unknown;
}

/**
 * Position of the node at `path`. When the path does not exist (a missing key), points at the deepest
 * ancestor that does, preferring the ancestor's key (`tls:`) over its first child.
 */
export function locate(
  doc: Document,
  lineCounter: LineCounter,
  path: KeyPath,
  target: LocateTarget = 'value',
): SourcePosition {
  const steps: Step[] = [{ key: undefined, value: doc.contents }];
  for (const segment of path) {
    const last = steps[steps.length - 1];
    const next = last === undefined ? undefined : child(last.value, segment);
    if (next === undefined) break;
    steps.push(next);
  }
  const found = steps.length === path.length + 1;
  const step = steps[steps.length - 1];
  if (step === undefined) return { line: 1, column: 1 };

  let offset: number | undefined;
  if (found && target === 'key' && step.key !== undefined) offset = rangeStart(step.key);
  // An empty value (`tls:`) is a null scalar placed after the colon; the key reads better.
  else if (found && isScalar(step.value) && step.value.value !== null) offset = rangeStart(step.value);
  else offset = (step.key === undefined ? undefined : rangeStart(step.key)) ?? rangeStart(step.value);

  return offset === undefined ? { line: 1, column: 1 } : position(lineCounter, offset);
}

/** 1-based line and column of a source offset. */
export function position(lineCounter: LineCounter, offset: number): SourcePosition {
  const { line, col } = lineCounter.linePos(offset);
  // linePos reports line 0 for offsets before any newline it has seen.
  return line === 0 ? { line: 1, column: offset + 1 } : { line, column: col };
}

function child(node: unknown, segment: string | number): Step | undefined {
  if (isMap(node)) {
    for (const pair of node.items) {
      if (!isPair(pair)) continue;
      const keyValue = isScalar(pair.key) ? pair.key.value : pair.key;
      if (String(keyValue) === String(segment)) {
        return { key: isScalar(pair.key) ? pair.key : undefined, value: pair.value };
      }
    }
    return undefined;
  }
  if (isSeq(node) && typeof segment === 'number') {
    const item: unknown = node.items[segment];
    return item === undefined ? undefined : { key: undefined, value: item };
  }
  return undefined;
}

function rangeStart(node: unknown): number | undefined {
  if (node !== null && typeof node === 'object' && 'range' in node) {
    const range = (node as { range?: readonly number[] | null }).range;
    return range?.[0];
  }
  return undefined;
}
