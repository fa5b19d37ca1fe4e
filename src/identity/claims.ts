/**
 * Verified token claims -> the identity and groups policy sees. Pure: the signature, issuer, audience and times
 * were checked before this runs (oidc-verifier.ts).
 */
import { MAX_IDENTITY_BYTES, type OidcIssuerConfig } from './oidc-model.js';

export type ClaimMapping =
  | { ok: true; name: string; groups: string[]; /** The claim value the name came from (before identityMap). */ subject: string }
  | { ok: false; reason: string };

const MAX_GROUPS = 256;
const MAX_GROUP_CHARS = 256;
const MAX_SUBJECT_CHARS = 1024;

type MappingRules = Pick<OidcIssuerConfig, 'identityClaim' | 'identityMap' | 'groupsClaim' | 'groups'>;

export function mapClaims(claims: Readonly<Record<string, unknown>>, rules: MappingRules): ClaimMapping {
  const raw = claims[rules.identityClaim];
  if (typeof raw !== 'string' || raw === '') {
    return { ok: false, reason: `the token has no "${rules.identityClaim}" claim (the issuer's identityClaim)` };
  }
  if (raw.length > MAX_SUBJECT_CHARS) return { ok: false, reason: `the token's "${rules.identityClaim}" claim is too long` };

  let name = raw;
  if (rules.identityMap) {
    // With a table the operator listed who may connect: an unlisted subject is refused, not passed through.
    if (!Object.hasOwn(rules.identityMap, raw)) {
      return { ok: false, reason: `"${rules.identityClaim}" ${quote(raw)} is not in the issuer's identityMap` };
    }
    name = rules.identityMap[raw]!;
  } else if (Buffer.byteLength(raw) > MAX_IDENTITY_BYTES || raw.includes('\0')) {
    return { ok: false, reason: `"${rules.identityClaim}" ${quote(raw)} cannot be a PostgreSQL user name (over ${MAX_IDENTITY_BYTES} bytes); map it with identityMap` };
  }

  const fromClaim = groupsFrom(claimAt(claims, rules.groupsClaim), rules.groupsClaim);
  if (!fromClaim.ok) return fromClaim;
  const groups = [...new Set([...fromClaim.groups, ...rules.groups])];
  return { ok: true, name, groups, subject: raw };
}

/** The value at a dotted path (`realm_access.roles`); a claim whose own name contains dots is found first. */
export function claimAt(claims: Readonly<Record<string, unknown>>, path: string): unknown {
  if (Object.hasOwn(claims, path)) return claims[path];
  let cur: unknown = claims;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || !Object.hasOwn(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/**
 * Groups from a claim value: a list of strings, or one space-separated string (the `scope` form). A claim of any
 * other shape refuses the login rather than dropping groups silently: a deny rule may depend on a group.
 */
function groupsFrom(value: unknown, claim: string): { ok: true; groups: string[] } | { ok: false; reason: string } {
  if (value === undefined || value === null) return { ok: true, groups: [] };
  const list = typeof value === 'string' ? value.split(/\s+/).filter(Boolean) : value;
  if (!Array.isArray(list) || !list.every((g): g is string => typeof g === 'string' && g !== '')) {
    return { ok: false, reason: `the groups claim "${claim}" is not a list of strings` };
  }
  if (list.length > MAX_GROUPS || list.some((g) => g.length > MAX_GROUP_CHARS)) {
    return { ok: false, reason: `the groups claim "${claim}" is too large (at most ${MAX_GROUPS} groups of ${MAX_GROUP_CHARS} characters)` };
  }
  return { ok: true, groups: list };
}

/** A claim value for a message: quoted, control characters escaped, shortened. */
export function quote(s: string, max = 80): string {
  const short = s.length > max ? `${s.slice(0, max)}…` : s;
  return JSON.stringify(short);
}
