/**
 * Masking for one client session (issue 4, DESIGN.md section 2 step 5): the rules bound to it, the target's
 * catalog, the session's search_path, and per statement the taint analysis and the check that combines with the
 * policy decision. The server half (RowDescription -> plan, DataRows rewritten) is mask-results.ts.
 */
import {
  buildMaskPlan, checkStatement, DEFAULT_SEARCH_PATH, MaskResolver, parseSearchPath, taintStatement,
  type BoundMasking, type CatalogCache, type CatalogSnapshot, type MaskRefusal, type PathSpec, type PlanField,
  type PlanOutcome, type StatementTaint,
} from '../masking/index.js';
import { parseChecked } from '../sql/parser.js';
import type { ClassifiedStatement } from '../sql/types.js';
import type { Json } from '../sql/walk.js';
import { SearchPathTracker } from './mask-path.js';

export interface MaskSessionDeps {
  /** The masking rules bound to this session now (a config change rebinds them). */
  bound(): BoundMasking;
  /** The target's catalog cache (created on first use). */
  cache(): CatalogCache;
  /** The per-install key of the hash method; throws when it cannot be read. */
  key(): Buffer;
  /** The target's database role ("$user" in search_path). */
  targetUser: string;
  /** The session's search_path, followed by SessionNames (names.ts), which also reloads the catalog after DDL. */
  path: SearchPathTracker;
}

/** What masking says about one message, to combine with policy (the most restrictive wins). */
export interface MaskDecision {
  verdict: 'allow' | 'review' | 'deny';
  refusal?: MaskRefusal;
  maskedColumns: string[];
  /** Per top-level statement, the taint its result is planned with (EXECUTE/FETCH resolved); null: unknown. */
  results: (StatementTaint | null)[];
}

/** The source text of what an EXECUTE or FETCH runs (its PREPARE / DECLARE / Parse), or null when unknown. */
export type InnerSource = (s: ClassifiedStatement) => string | null;

const RANK = { allow: 0, review: 1, deny: 2 } as const;
const MEMO_MAX = 512;

function refuse(message: string, hint: string): MaskDecision {
  return { verdict: 'deny', refusal: { code: '55000', message, hint, rule: 'sluice:masking' }, maskedColumns: [], results: [] };
}

export class MaskSession {
  readonly path: SearchPathTracker;
  private resolverMemo: { version: number; bound: BoundMasking; resolver: MaskResolver } | null = null;
  /** Taint per (snapshot version, search_path, text): drivers repeat the same statements. */
  private readonly memo = new Map<string, { taint: StatementTaint; text: string }[] | null>();
  /** Set when the session started with masking in force: its results are followed (mask-results.ts). */
  engaged = false;

  constructor(private readonly deps: MaskSessionDeps) {
    this.path = deps.path;
  }

  /** True when masking rules apply to this session now. */
  get active(): boolean {
    return this.deps.bound().active;
  }

  /**
   * Loads what the session needs before its first statement (the catalog, the key). Rejects with a message for
   * the client when it cannot: a session that masking applies to is refused rather than run unmasked.
   */
  async prepare(): Promise<void> {
    this.deps.key();
    const snap = await this.deps.cache().ready();
    this.path.setServerDefault(snap.defaultSearchPath ?? DEFAULT_SEARCH_PATH);
  }

  snapshot(): CatalogSnapshot | null {
    return this.deps.cache().current();
  }

  private resolver(snap: CatalogSnapshot): MaskResolver {
    const bound = this.deps.bound();
    const m = this.resolverMemo;
    if (m && m.version === snap.version && m.bound === bound) return m.resolver;
    const resolver = new MaskResolver(bound, snap);
    this.resolverMemo = { version: snap.version, bound, resolver };
    return resolver;
  }

  /**
   * Taint of each statement of `text`, analysed with the search_path in force for it: the session's now, plus
   * whatever earlier statements of the same message set.
   */
  analyse(text: string, snap: CatalogSnapshot, statements?: readonly ClassifiedStatement[]): { taint: StatementTaint; text: string }[] | null {
    const key = `${snap.version}\u0000${this.path.key()}\u0000${text}`;
    const hit = this.memo.get(key);
    if (hit !== undefined) return hit;
    const parsed = parseChecked(text);
    let out: { taint: StatementTaint; text: string }[] | null = null;
    if (parsed.ok) {
      let path: PathSpec = this.path.current();
      out = [];
      const stmts = parsed.tree.stmts ?? [];
      for (let i = 0; i < stmts.length; i++) {
        const raw = stmts[i]! as { stmt?: Json; stmt_location?: number; stmt_len?: number };
        out.push({ taint: taintStatement((raw.stmt ?? {}) as Json, snap, { searchPath: path }), text: slice(text, raw.stmt_location, raw.stmt_len) });
        const s = statements?.[i];
        if (s) path = SearchPathTracker.after(path, s, this.deps.targetUser, this.path.sessionDefault());
      }
    }
    if (this.memo.size >= MEMO_MAX) this.memo.delete(this.memo.keys().next().value!);
    this.memo.set(key, out);
    return out;
  }

  /** Checks a message's statements (classified already) against the masking rules, before it runs. */
  decide(text: string, statements: readonly ClassifiedStatement[], inner: InnerSource): MaskDecision {
    if (!this.active) return { verdict: 'allow', maskedColumns: [], results: statements.map(() => null) };
    const snap = this.snapshot();
    if (!snap) {
      this.deps.cache().invalidate();
      return refuse('statement refused: masking rules apply to this session but Sluice has not loaded the catalog of the target yet', 'Retry in a moment; if it persists, ask the operator to check the target connection.');
    }
    const analysed = this.analyse(text, snap, statements);
    if (!analysed || analysed.length !== statements.length) {
      return refuse('statement refused: Sluice could not analyse it against the masking rules', 'Send one plain SQL statement at a time.');
    }
    const r = this.resolver(snap);
    const out: MaskDecision = { verdict: 'allow', maskedColumns: [], results: [] };
    const masked = new Set<string>();
    for (let i = 0; i < statements.length; i++) {
      const s = statements[i]!;
      let t: StatementTaint | null = analysed[i]!.taint;
      let checkIt = true;
      if (s.execute || s.fetch) {
        const src = inner(s);
        t = src === null ? null : usable(this.analyse(src, snap)?.[0]?.taint);
        if (t === null && s.execute) {
          return refuse('EXECUTE refused: Sluice cannot tell which statement it runs, so it cannot apply masking rules to it', 'Run the statement itself instead of EXECUTE.');
        }
        // A FETCH reads a cursor whose DECLARE was checked; EXECUTE runs its statement again: checked again.
        checkIt = s.execute !== undefined;
      }
      out.results.push(usable(t));
      if (!t || !checkIt) continue;
      const c = checkStatement(t, r);
      for (const m of c.maskedColumns) masked.add(m);
      // PREPARE runs nothing: what its predicates reveal is decided at each EXECUTE.
      const verdict = c.verdict === 'review' && s.prepare ? 'allow' : c.verdict;
      if (RANK[verdict] > RANK[out.verdict]) {
        out.verdict = verdict;
        out.refusal = c.refusal!;
      }
    }
    out.maskedColumns = [...masked];
    return out;
  }

  /** The taint one statement's result is planned with at Execute time (protocol), analysed with the path now. */
  resultTaint(text: string, s: ClassifiedStatement | undefined, inner: InnerSource): StatementTaint | null {
    const snap = this.snapshot();
    if (!snap || !s) return null;
    if (s.execute || s.fetch) {
      const src = inner(s);
      return src === null ? null : usable(this.analyse(src, snap)?.[0]?.taint);
    }
    return usable(this.analyse(text, snap)?.[0]?.taint);
  }

  /** Table OIDs a RowDescription names that the snapshot does not know: the plan waits for a reload. */
  needsReload(oids: readonly number[]): boolean {
    const snap = this.snapshot();
    return !snap || oids.some((o) => o !== 0 && !snap.relations.has(o));
  }

  ensure(oids: readonly number[]): Promise<unknown> {
    return this.deps.cache().ensure(oids);
  }

  /** The mask plan of one result; `taint` null when the statement is not known (everything 0/0 is masked). */
  plan(fields: readonly PlanField[], taint: StatementTaint | null): PlanOutcome {
    const snap = this.snapshot();
    if (!snap) {
      return { ok: false, refusal: { code: '55000', message: 'result withheld: Sluice has no catalog of the target to apply masking with', hint: 'Retry in a moment.', rule: 'sluice:masking' } };
    }
    return buildMaskPlan(fields, taint, this.resolver(snap), this.deps.key());
  }
}

/**
 * A taint that can plan a result. EXECUTE and FETCH stand for another statement: left unresolved they would
 * carry no sources, so they count as unknown (every field without provenance is masked).
 */
function usable(t: StatementTaint | null | undefined): StatementTaint | null {
  if (!t || t.executes !== undefined || t.kind === 'FetchStmt') return null;
  return t;
}

function slice(text: string, location: number | undefined, len: number | undefined): string {
  // libpg_query locations are byte offsets into the UTF-8 text.
  const bytes = Buffer.from(text, 'utf8');
  const start = location ?? 0;
  const end = len && len > 0 ? start + len : bytes.length;
  return bytes.toString('utf8', start, end).trim();
}
