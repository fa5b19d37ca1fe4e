/**
 * The `masking` section of the config file: which columns are masked, how, and for whom not. Part of the one
 * zod model (src/config/model.ts) the loader validates with and the JSON Schema is generated from.
 * Semantics: DESIGN.md section 4, issue 4; rules are bound to a session with `bindMasking` (rules.ts).
 */
import { z } from 'zod';

const RULE_NAME_PATTERN = /^[A-Za-z0-9_.-][A-Za-z0-9_.:-]{0,62}$/;
/** schema.table.column, each part a glob without dots or spaces (`public.*.email`, `*.customers.ssn`). */
const COLUMN_PATTERN = /^[^.\s]+\.[^.\s]+\.[^.\s]+$/;

const count = (what: string) =>
  z.number().int({ error: 'expected an integer' }).min(0, { error: 'must be >= 0' }).max(64, { error: 'must be <= 64' }).describe(what);

const globList = (what: string) =>
  z.array(z.string().min(1, { error: 'must not be empty' })).min(1, { error: 'an empty list matches nothing; leave the key out' }).optional().describe(what);

export const SIMPLE_METHODS = ['redact', 'email', 'hash', 'null'] as const;

const MethodObjectSchema = z
  .discriminatedUnion('kind', [
    z
      .strictObject({
        kind: z.literal('redact'),
        text: z.string().max(64).default('***').describe('What every value becomes (text-like columns).'),
      })
      .describe('Replace the value with fixed text; other types become NULL.'),
    z
      .strictObject({
        kind: z.literal('partial'),
        first: count('Characters kept at the start.').default(0),
        last: count('Characters kept at the end.').default(4),
        fill: z.string().length(1, { error: 'must be one character' }).default('*').describe('Character that replaces each hidden character.'),
      })
      .describe('Keep the first/last characters, hide the rest (a value no longer than first+last is hidden whole).'),
    z.strictObject({ kind: z.literal('email') }).describe('Hide the local part, keep the domain: ***@example.com.'),
    z.strictObject({ kind: z.literal('hash') }).describe('Keyed HMAC-SHA256 of the value (key per install), stable so joins still line up.'),
    z.strictObject({ kind: z.literal('null') }).describe('Replace the value with NULL.'),
    z
      .strictObject({
        kind: z.literal('regex'),
        pattern: z
          .string()
          .min(1)
          .superRefine((p, ctx) => {
            try {
              new RegExp(p, 'u');
            } catch (e) {
              ctx.addIssue({ code: 'custom', message: `not a valid regular expression: ${(e as Error).message}` });
            }
          })
          .describe('JavaScript regular expression (Unicode mode); every match is replaced.'),
        replacement: z.string().describe('Replacement text; $1.. refer to capture groups.'),
      })
      .describe('Replace every match of a regular expression.'),
  ]);

export const MaskMethodSchema = z
  .union([z.enum(SIMPLE_METHODS, { error: `must be one of ${SIMPLE_METHODS.join(', ')} or an object with kind` }), MethodObjectSchema])
  .describe('How values are masked: redact, email, hash, null, or { kind: partial|regex|redact, ... }.');

export const MaskRuleSchema = z
  .strictObject({
    name: z
      .string()
      .regex(RULE_NAME_PATTERN, { error: 'must be 1-63 characters of letters, digits, _ . - :' })
      .describe('Unique rule name; refusals and the audit name the rule.'),
    description: z.string().optional().describe('Why the rule exists.'),
    columns: z
      .array(z.string().regex(COLUMN_PATTERN, { error: 'must be schema.table.column (globs allowed in each part), like public.customers.email' }))
      .min(1, { error: 'a rule needs at least one column' })
      .describe('Columns as schema.table.column globs. A rule on a parent table covers its partitions and inheritance children, and a rule on a child covers the parent.'),
    method: MaskMethodSchema,
    targets: globList('Target name globs the rule applies to; omitted means every target.'),
    except: z
      .strictObject({
        identities: globList('Identity name globs the rule does not apply to.'),
        groups: globList('Group name globs whose members the rule does not apply to.'),
      })
      .prefault({})
      .describe('Who sees these columns unmasked.'),
    derived: z
      .enum(['mask', 'deny'], { error: 'must be mask or deny' })
      .default('mask')
      .describe('A result column computed from a masked column (upper(email), row_to_json(u), a UNION branch): mask (as redact) or deny the statement.'),
    predicates: z
      .enum(['allow', 'review', 'deny'], { error: 'must be allow, review or deny' })
      .default('review')
      .describe('Use of the column outside the result (WHERE, JOIN ON, ORDER BY, GROUP BY, CASE, comparisons) lets values be guessed one at a time: allow, review or deny.'),
  })
  .describe('A masking rule: columns, a method, and who is exempt.');

export const MaskingSchema = z
  .strictObject({
    rules: z
      .array(MaskRuleSchema)
      .default([])
      .superRefine((rules, ctx) => {
        const first = new Map<string, number>();
        rules.forEach((r, i) => {
          const at = first.get(r.name);
          if (at === undefined) first.set(r.name, i);
          else ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate rule name "${r.name}" (already used by rules[${at}])` });
        });
      })
      .describe('Masking rules; when several match a column, the first in file order decides its method.'),
    catalogRefreshMs: z
      .number()
      .int()
      .min(1000, { error: 'must be >= 1000' })
      .max(86_400_000)
      .default(60_000)
      .describe('How often the column catalog of each target is reloaded, in ms (it is also reloaded after DDL).'),
  })
  .describe('Column masking. Without this section nothing is masked.');

export type Masking = z.infer<typeof MaskingSchema>;
export type MaskingInput = z.input<typeof MaskingSchema>;
export type MaskRule = z.infer<typeof MaskRuleSchema>;
export type MaskMethodConfig = z.infer<typeof MaskMethodSchema>;

/** A method with defaults applied and the string shorthands expanded. */
export type MaskMethod =
  | { kind: 'redact'; text: string }
  | { kind: 'partial'; first: number; last: number; fill: string }
  | { kind: 'email' }
  | { kind: 'hash' }
  | { kind: 'null' }
  | { kind: 'regex'; pattern: string; replacement: string };

export const REDACT: MaskMethod = Object.freeze({ kind: 'redact', text: '***' });

export function normalizeMethod(m: MaskMethodConfig): MaskMethod {
  if (typeof m !== 'string') return m;
  switch (m) {
    case 'redact':
      return REDACT;
    case 'email':
    case 'hash':
    case 'null':
      return { kind: m };
  }
}

export const DEFAULT_MASKING: Masking = MaskingSchema.parse({});
