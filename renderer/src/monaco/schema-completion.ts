/**
 * Completion for the YAML rules text from the contract's JSON Schema (RulesDocument.schema). Monaco's JSON
 * language service cannot read YAML, so the position's key path is found from indentation (YAML block style,
 * which is how the rules are written) and the schema is walked along it. Validation is the server's: the same
 * loader that would refuse the save (checkRules).
 */
export type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  $ref?: string;
  description?: string;
  default?: unknown;
  $defs?: Record<string, JsonSchema>;
};

/** Key path at a position: keys, and '[]' for an array item. */
export function yamlPathAt(lines: readonly string[], lineIndex: number, column: number): string[] {
  const path: string[] = [];
  const cur = lines[lineIndex] ?? '';
  let indent = column;
  const dash0 = /^(\s*)-\s+/.exec(cur);
  if (dash0 && dash0[0].length <= column) {
    path.unshift('[]');
    indent = dash0[1]!.length;
  }
  for (let i = lineIndex - 1; i >= 0 && indent > 0; i--) {
    const l = lines[i]!;
    if (!l.trim() || l.trim().startsWith('#')) continue;
    const m = /^(\s*)(-\s+)?(?:([^\s:#'"][^:#]*?|"[^"]*"|'[^']*'):(?:\s|$))?/.exec(l)!;
    const lead = m[1]!.length;
    const keyCol = lead + (m[2]?.length ?? 0);
    if (m[2] && lead < indent && keyCol >= indent) {
      // A sibling key of the same array item: we are inside that item.
      path.unshift('[]');
      indent = lead;
      continue;
    }
    if (keyCol >= indent || !m[3]) continue;
    path.unshift(m[3].replace(/^["']|["']$/g, ''));
    if (m[2]) {
      path.unshift('[]');
      indent = lead;
    } else {
      indent = keyCol;
    }
  }
  return path;
}

export function resolve(s: JsonSchema | undefined, root: JsonSchema): JsonSchema[] {
  if (!s) return [];
  if (s.$ref) {
    const name = s.$ref.replace(/^#\/(\$defs|definitions)\//, '');
    return resolve(root.$defs?.[name], root);
  }
  const alts = [...(s.anyOf ?? []), ...(s.oneOf ?? []), ...(s.allOf ?? [])];
  return [s, ...alts.flatMap((a) => resolve(a, root))];
}

export function schemaAt(root: JsonSchema, path: readonly string[]): JsonSchema[] {
  let nodes = resolve(root, root);
  for (const seg of path) {
    nodes = nodes.flatMap((n) => resolve(seg === '[]' ? n.items : n.properties?.[seg], root));
    if (nodes.length === 0) break;
  }
  return nodes;
}

export interface Suggestion {
  label: string;
  kind: 'property' | 'value';
  insertText: string;
  documentation: string;
}

/** Suggestions at a position: property names in key position, enum values after `key:`. */
export function suggestAt(root: JsonSchema, lines: readonly string[], lineIndex: number, column: number): Suggestion[] {
  const before = (lines[lineIndex] ?? '').slice(0, column);
  const value = /^(\s*)(-\s+)?([\w.-]+):\s*\[?(?:[^\]]*,\s*)?[\w-]*$/.exec(before);
  if (value) {
    const keyColumn = value[1]!.length + (value[2]?.length ?? 0);
    const path = [...yamlPathAt(lines, lineIndex, keyColumn), value[3]!];
    const nodes = schemaAt(root, path);
    const values = new Set<string>();
    for (const n of nodes) {
      for (const v of [...(n.enum ?? []), ...(n.const !== undefined ? [n.const] : [])]) values.add(String(v));
      for (const it of resolve(n.items, root)) for (const v of [...(it.enum ?? []), ...(it.const !== undefined ? [it.const] : [])]) values.add(String(v));
    }
    return [...values].map((v) => ({ label: v, kind: 'value', insertText: v, documentation: nodes.find((n) => n.description)?.description ?? '' }));
  }
  const word = /[\w.-]*$/.exec(before)![0];
  const path = yamlPathAt(lines, lineIndex, column - word.length);
  const props = new Map<string, JsonSchema>();
  for (const n of schemaAt(root, path)) for (const [k, v] of Object.entries(n.properties ?? {})) if (!props.has(k)) props.set(k, v);
  return [...props].map(([k, v]) => ({
    label: k, kind: 'property', insertText: `${k}: `,
    documentation: resolve(v, root).map((x) => x.description).find(Boolean) ?? '',
  }));
}
