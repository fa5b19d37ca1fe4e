/**
 * Decisions with the rules of one session: `checkStatement` before a statement runs (laundering, echoes, user
 * functions, predicates), `buildMaskPlan` when its RowDescription arrives (a method per field, or a refusal).
 * RowDescription provenance (table OID, attnum) is authoritative for plain column references; the taint of the
 * parse tree covers everything else (0/0 fields, views, whole rows). DESIGN.md section 2 step 5.
 */
import { colKey, type ColKey } from './catalog-snapshot.js';
import { compileMasker, typeHandling, type FieldMasker, type WireFormat } from './methods.js';
import { REDACT, type MaskMethod } from './model.js';
import type { CompiledMaskRule, MaskResolver } from './rules.js';
import { UNATTRIBUTED, type Source } from './taint-expr.js';
import { relationColumns, viewColumns } from './taint-select.js';
import { Findings } from './taint-expr.js';
import type { StatementTaint } from './taint.js';

export const MASKING_REFUSED = '42501';

export interface MaskRefusal {
  code: string;
  message: string;
  hint: string;
  rule: string;
}

/** One RowDescription field as the plan needs it. */
export interface PlanField {
  name?: string;
  tableOid: number;
  attnum: number;
  typeOid: number;
  format: WireFormat;
}

export interface FieldMask {
  method: MaskMethod;
  rule: string;
  /** direct: the field is the masked column; derived: computed from one (masked as redact). */
  how: 'direct' | 'derived';
  /** The masked column(s) it comes from, for the audit and the live feed. */
  columns: string[];
}

export interface MaskPlan {
  /** Per field: null passes the field unchanged. */
  fields: (FieldMask | null)[];
  /** Per field, for rewriteDataRow. */
  maskers: (FieldMasker | null)[];
  /** False when no field is masked: DataRows pass as the same bytes. */
  active: boolean;
}

export type PlanOutcome = { ok: true; plan: MaskPlan } | { ok: false; refusal: MaskRefusal };

export interface StatementCheck {
  verdict: 'allow' | 'review' | 'deny';
  /** Set for review and deny. */
  refusal?: MaskRefusal;
  /** Masked columns the statement reads (for the approval view and the audit). */
  maskedColumns: string[];
}

const RANK = { allow: 0, review: 1, deny: 2 } as const;

const DERIVED_HINT = 'Select the masked column itself (it is returned masked) instead of an expression over it.';

function derivedMessage(label: string, column: string, rule: string): string {
  return `result column ${label} is computed from masked column ${column} and rule ${rule} refuses derived values`;
}

function refusal(rule: string, message: string, hint: string): MaskRefusal {
  return { code: MASKING_REFUSED, message, hint, rule };
}

/** Checks what a statement does with masked columns before it runs. */
export function checkStatement(t: StatementTaint, r: MaskResolver): StatementCheck {
  if (!r.active) return { verdict: 'allow', maskedColumns: [] };
  const masked = new Set<string>();
  for (const s of t.all) if (r.ruleOf(s)) masked.add(r.describe(s));
  const maskedColumns = [...masked];
  const deny = (rule: string, message: string, hint: string): StatementCheck => ({ verdict: 'deny', refusal: refusal(rule, message, hint), maskedColumns });
  if (t.opaque.length > 0) {
    return deny('sluice:masking', `statement refused: ${t.opaque[0]}, which Sluice cannot check against masking rules`, 'Masking rules apply to this session; run the query as plain SQL without it.');
  }
  if (t.userFunctions.length > 0) {
    return deny('sluice:masking', `statement refused: it calls ${t.userFunctions[0]}, a function that may read masked columns`, 'Masking rules apply to this session: only built-in functions are allowed.');
  }
  for (const [s, why] of t.sinks) {
    const rule = r.ruleOf(s);
    if (rule) return deny(rule.name, `${why} refused: it would copy masked column ${r.describe(s)} (rule ${rule.name}) where masking does not apply`, 'Select the column instead (it is returned masked), or ask the operator for an exception to the masking rule.');
  }
  for (const s of t.echoes) {
    const rule = r.ruleOf(s);
    if (rule) return deny(rule.name, `cast refused: converting masked column ${r.describe(s)} (rule ${rule.name}) could echo its value in an error message`, 'Cast it in your own code after reading it (it is returned masked).');
  }
  // A result column computed from a column whose rule refuses derived values: refused before it runs (at the
  // RowDescription the statement would already have run, with whatever side effects it has).
  if (t.exact && t.outputs) {
    for (const o of t.outputs) {
      if (!o.computed) continue;
      for (const s of o.sources) {
        const rule = r.ruleOf(s);
        if (rule?.derived === 'deny') return deny(rule.name, derivedMessage(`"${o.name}"`, r.describe(s), rule.name), DERIVED_HINT);
      }
    }
  }
  let verdict: 'allow' | 'review' | 'deny' = 'allow';
  let worst: { rule: CompiledMaskRule; source: Source } | null = null;
  for (const s of t.predicates) {
    const rule = r.ruleOf(s);
    if (rule && RANK[rule.predicates] > RANK[verdict]) {
      verdict = rule.predicates;
      worst = { rule, source: s };
    }
  }
  if (verdict === 'allow' || !worst) return { verdict: 'allow', maskedColumns };
  const col = r.describe(worst.source);
  return {
    verdict,
    refusal: refusal(
      worst.rule.name,
      `statement uses masked column ${col} (rule ${worst.rule.name}) in a condition, join, ordering or function argument, which can reveal its values`,
      verdict === 'deny' ? 'Filter, join and sort on columns that are not masked.' : 'An operator must approve this statement.',
    ),
    maskedColumns,
  };
}

/** Builds the mask plan of one result from its RowDescription fields. `taint` may be null (unknown statement). */
export function buildMaskPlan(fields: readonly PlanField[], t: StatementTaint | null, r: MaskResolver, key: Buffer): PlanOutcome {
  const none: MaskPlan = { fields: fields.map(() => null), maskers: fields.map(() => null), active: false };
  if (!r.active) return { ok: true, plan: none };
  const aligned = t !== null && t.exact && t.outputs !== null && t.outputs.length === fields.length;
  const everything = new Set<Source>(t ? t.all : [UNATTRIBUTED]);
  if (!t) everything.add(UNATTRIBUTED);
  const plan: MaskPlan = { fields: [], maskers: [], active: false };
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    const fromTaint: ReadonlySet<Source> = aligned ? t!.outputs![i]!.sources : everything;
    const p = provenance(f, r, fromTaint, aligned);
    let mask: FieldMask | null = null;
    const directRule = p.direct ? r.ruleOf(p.direct) : null;
    if (directRule) {
      mask = { method: directRule.method, rule: directRule.name, how: 'direct', columns: [r.describe(p.direct!)] };
    } else {
      const hits = [...p.sources].filter((s) => s !== p.direct).map((s) => ({ s, rule: r.ruleOf(s) })).filter((h) => h.rule !== null);
      const denied = hits.find((h) => h.rule!.derived === 'deny');
      const label = f.name !== undefined ? `"${f.name}"` : `${i + 1}`;
      if (denied) {
        return {
          ok: false,
          refusal: refusal(denied.rule!.name, derivedMessage(label, r.describe(denied.s), denied.rule!.name), DERIVED_HINT),
        };
      }
      if (hits.length > 0) mask = { method: REDACT, rule: hits[0]!.rule!.name, how: 'derived', columns: hits.map((h) => r.describe(h.s)) };
    }
    plan.fields.push(mask);
    plan.maskers.push(mask ? compileMasker(mask.method, typeHandling(f.typeOid, r.cat.extraTextTypes), f.format, key) : null);
    if (mask) plan.active = true;
  }
  return { ok: true, plan };
}

/**
 * Where a field's value comes from: the column it is exactly (`direct`), and every source it may carry.
 * A table OID the snapshot does not know (created in the client's open transaction) is judged by the taint,
 * which names that relation by its name.
 */
function provenance(f: PlanField, r: MaskResolver, fromTaint: ReadonlySet<Source>, aligned: boolean): { direct: ColKey | null; sources: Set<Source> } {
  if (f.tableOid === 0) return { direct: null, sources: new Set(fromTaint) };
  const rel = r.cat.relations.get(f.tableOid);
  if (!rel) return { direct: null, sources: new Set(fromTaint) };
  // A field PostgreSQL attributes to a known column is that column's value: when the taint cannot be lined up
  // with the fields, the statement-wide sources would only mask it for what other fields carry.
  const sources = new Set(aligned || f.attnum <= 0 ? fromTaint : []);
  if (f.attnum <= 0) {
    // Whole row (or a system column): every column counts.
    for (const c of relationColumns({ cat: r.cat, f: new Findings() }, rel)) for (const s of c.sources) sources.add(s);
    return { direct: null, sources };
  }
  if (rel.viewDef !== null) {
    const v = viewColumns(r.cat, rel);
    const idx = rel.columns.findIndex((c) => c.attnum === f.attnum);
    const col = v.columns[idx];
    for (const s of col ? col.sources : v.fallback) sources.add(s);
    return { direct: col?.direct ?? null, sources };
  }
  const k = colKey(rel.oid, f.attnum);
  sources.add(k);
  return { direct: k, sources };
}
