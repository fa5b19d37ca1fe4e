/**
 * Masking rules bound to one session (identity, groups, target), and resolution of a source (a base column,
 * a column of a relation the catalog does not know, or something unattributable) to the rule that masks it.
 */
import { globMatch } from '../policy/glob.js';
import type { CatalogSnapshot, QualifiedColumn } from './catalog-snapshot.js';
import { normalizeMethod, REDACT, type Masking, type MaskMethod, type MaskRule } from './model.js';
import { UNATTRIBUTED, type Source } from './taint-expr.js';

export interface CompiledMaskRule {
  name: string;
  method: MaskMethod;
  derived: MaskRule['derived'];
  predicates: MaskRule['predicates'];
  /** schema, table, column globs per `columns` entry. */
  patterns: [string, string, string][];
}

export interface MaskingSubject {
  identity: { name: string; groups: readonly string[] };
  target: string;
}

/** What a source is masked by when Sluice cannot tell where it comes from. */
export const UNATTRIBUTED_RULE: CompiledMaskRule = Object.freeze({
  name: 'sluice:unattributed', method: REDACT, derived: 'mask', predicates: 'review', patterns: [],
});

export interface BoundMasking {
  /** Rules in force for this session, in file order. */
  readonly rules: readonly CompiledMaskRule[];
  /** True when any rule is in force: then whatever cannot be attributed is treated as masked. */
  readonly active: boolean;
  /** The first rule naming the column, or null. */
  ruleFor(col: QualifiedColumn): CompiledMaskRule | null;
}

/** Binds the masking section to a session; bind again when the config changes. */
export function bindMasking(masking: Masking | undefined, who: MaskingSubject): BoundMasking {
  const rules: CompiledMaskRule[] = [];
  for (const r of masking?.rules ?? []) {
    if (r.targets && !r.targets.some((t) => globMatch(t, who.target))) continue;
    const exceptId = r.except.identities?.some((p) => globMatch(p, who.identity.name)) ?? false;
    const exceptGroup = r.except.groups?.some((p) => who.identity.groups.some((g) => globMatch(p, g))) ?? false;
    if (exceptId || exceptGroup) continue;
    rules.push({
      name: r.name,
      method: normalizeMethod(r.method),
      derived: r.derived,
      predicates: r.predicates,
      patterns: r.columns.map((c) => c.split('.') as [string, string, string]),
    });
  }
  const ruleFor = (col: QualifiedColumn): CompiledMaskRule | null =>
    rules.find((r) => r.patterns.some(([s, t, c]) => globMatch(s, col.schema) && globMatch(t, col.table) && globMatch(c, col.column))) ?? null;
  return { rules, active: rules.length > 0, ruleFor };
}

/**
 * Source -> rule for one session and one catalog snapshot, memoised (keep one per session per snapshot
 * version). A base column is masked when a rule names it or any inheritance relative (catalog.namesOf).
 */
export class MaskResolver {
  private readonly memo = new Map<Source, CompiledMaskRule | null>();

  constructor(
    readonly bound: BoundMasking,
    readonly cat: CatalogSnapshot,
  ) {}

  get active(): boolean {
    return this.bound.active;
  }

  ruleOf(source: Source): CompiledMaskRule | null {
    if (!this.bound.active) return null;
    let r = this.memo.get(source);
    if (r === undefined) {
      r = this.resolve(source);
      this.memo.set(source, r);
    }
    return r;
  }

  /** A readable name for a source, for messages and the audit. */
  describe(source: Source): string {
    if (source === UNATTRIBUTED) return 'a value Sluice cannot attribute to a column';
    if (source.startsWith('?')) return `${source.slice(1)} (not in the catalog)`;
    const [oid, attnum] = source.split('.').map(Number);
    const n = this.cat.nameOf(oid!, attnum!);
    return n ? `${n.schema}.${n.table}.${n.column}` : `column ${attnum} of relation ${oid}`;
  }

  private resolve(source: Source): CompiledMaskRule | null {
    if (source === UNATTRIBUTED) return UNATTRIBUTED_RULE;
    if (source.startsWith('?')) {
      // `?schema.table.column` of a relation the catalog does not know; empty schema: any; column `*`: any.
      const [schema, table, column] = splitUnknown(source.slice(1));
      return (
        this.bound.rules.find((r) =>
          r.patterns.some(([s, t, c]) => (schema === '' || globMatch(s, schema)) && globMatch(t, table) && (column === '*' || globMatch(c, column))),
        ) ?? null
      );
    }
    const [oid, attnum] = source.split('.').map(Number);
    const names = this.cat.namesOf(oid!, attnum!);
    // A column the snapshot does not know cannot be cleared.
    if (names.length === 0) return UNATTRIBUTED_RULE;
    for (const n of names) {
      const r = this.bound.ruleFor(n);
      if (r) return r;
    }
    return null;
  }
}

function splitUnknown(s: string): [string, string, string] {
  const lastDot = s.lastIndexOf('.');
  const column = s.slice(lastDot + 1);
  const rest = s.slice(0, lastDot);
  const firstDot = rest.indexOf('.');
  return [rest.slice(0, firstDot), rest.slice(firstDot + 1), column];
}
