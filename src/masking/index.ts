/** Column masking (issue 4): config model, catalog, taint analysis, mask plans and the DataRow rewriter. */
export { CatalogCache, loadCatalog, type CatalogCacheOptions } from './catalog.js';
export { CatalogSnapshot, DEFAULT_SEARCH_PATH, parseSearchPath, type ColKey, type PathSpec, type QualifiedColumn } from './catalog-snapshot.js';
export { DataRowError, rewriteDataRow } from './datarow.js';
export { loadOrCreateMaskKey, MaskKeyError } from './key.js';
export { compileMasker, maskString, typeHandling, type FieldMasker, type WireFormat } from './methods.js';
export { DEFAULT_MASKING, MaskingSchema, normalizeMethod, type Masking, type MaskMethod, type MaskRule } from './model.js';
export {
  buildMaskPlan, checkStatement, MASKING_REFUSED,
  type FieldMask, type MaskPlan, type MaskRefusal, type PlanField, type PlanOutcome, type StatementCheck,
} from './plan.js';
export { bindMasking, MaskResolver, type BoundMasking, type CompiledMaskRule, type MaskingSubject } from './rules.js';
export { taintStatement, taintText, UNATTRIBUTED, type StatementTaint, type TaintOptions } from './taint.js';
