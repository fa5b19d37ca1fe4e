/**
 * The `oidc` section of the config file: the identity providers whose tokens Sluice accepts as passwords.
 * Part of the one zod model (src/config/model.ts), so every field carries a description for the JSON Schema.
 * Semantics: oidc-verifier.ts (checks) and claims.ts (token -> identity and groups).
 */
import { z } from 'zod';

/**
 * Only asymmetric signatures: with a JWKS of public keys, an HMAC algorithm would make the public key the shared
 * secret (key-type confusion), and `none` is no signature at all. Neither can be configured.
 */
export const ASYMMETRIC_ALGS = [
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519',
] as const;
export type AsymmetricAlg = (typeof ASYMMETRIC_ALGS)[number];

export const IDENTITY_CLAIMS = ['sub', 'client_id', 'azp'] as const;

/** PostgreSQL user names are at most 63 bytes (NAMEDATALEN - 1); the startup `user` must equal the identity. */
export const MAX_IDENTITY_BYTES = 63;

const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
const CLAIM_PATH_PATTERN = /^[A-Za-z0-9_:$-]+(\.[A-Za-z0-9_:$-]+)*$/;
const ISSUER_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,63}$/;

const int = (min: number, max: number) =>
  z.number().int({ error: 'expected an integer' }).min(min, { error: `must be >= ${min}` }).max(max, { error: `must be <= ${max}` });

const identityName = z
  .string()
  .min(1, { error: 'must not be empty' })
  .refine((s) => Buffer.byteLength(s) <= MAX_IDENTITY_BYTES && !s.includes('\0'), {
    error: `must be at most ${MAX_IDENTITY_BYTES} bytes (it is the PostgreSQL user name clients send)`,
  });

/** Where a client secret comes from; like target passwords, never a literal in the file. */
export const SecretSourceSchema = z
  .union(
    [
      z.strictObject({ env: z.string().regex(ENV_NAME_PATTERN, { error: 'must be an environment variable name like SLUICE_INTROSPECTION_SECRET' }).describe('Environment variable holding the secret.') }),
      z.strictObject({ file: z.string().min(1, { error: 'must not be empty' }).describe("File holding the secret (one trailing newline is stripped); relative to the config file's directory.") }),
    ],
    {
      // Never echo the input: for a literal secret it is the secret itself.
      error: (issue) =>
        typeof issue.input === 'string'
          ? 'a literal secret is refused: secrets do not belong in config files; use { env: VARIABLE_NAME } or { file: ./path/to/secret }'
          : 'must be { env: VARIABLE_NAME } or { file: ./path/to/secret }',
    },
  )
  .describe('Where the client secret comes from (environment variable or file). Literal secrets are refused.');

/** True for 127.0.0.0/8, ::1 and localhost: the only hosts an http (unencrypted) issuer may live on. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** Why an issuer/endpoint URL is refused, or null when it is acceptable. */
export function insecureUrlProblem(text: string, what: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `${what} must be an absolute URL like https://idp.example.com`;
  }
  if (url.protocol === 'https:') return null;
  if (url.protocol === 'http:') {
    return isLoopbackHost(url.hostname)
      ? null
      : `${what} uses http on a non-loopback host (${url.hostname}): tokens and keys would travel unencrypted; use https (http is only allowed for 127.0.0.1, ::1 and localhost)`;
  }
  return `${what} must use https (got ${url.protocol.replace(/:$/, '')})`;
}

export const IntrospectionSchema = z
  .strictObject({
    clientId: z.string().min(1, { error: 'must not be empty' }).describe('Client id Sluice authenticates to the introspection endpoint with.'),
    clientSecret: SecretSourceSchema,
  })
  .describe('Opaque (non-JWT) tokens are checked at the issuer\'s introspection endpoint (RFC 7662) with these client credentials.');

export const OidcIssuerSchema = z
  .strictObject({
    issuer: z
      .string()
      .superRefine((s, ctx) => {
        const problem = insecureUrlProblem(s, 'issuer');
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .describe('Issuer identifier (the `iss` of its tokens); discovery reads ISSUER/.well-known/openid-configuration. https, or http on loopback only.'),
    name: z
      .string()
      .regex(ISSUER_NAME_PATTERN, { error: 'must be 1-63 characters of letters, digits, _ . -' })
      .optional()
      .describe('Short name for the CLI (`sluice exec --issuer NAME`).'),
    audience: z
      .union([z.string().min(1, { error: 'must not be empty' }), z.array(z.string().min(1, { error: 'must not be empty' })).min(1, { error: 'give at least one audience' })], {
        error: (issue) => (issue.input === undefined ? 'required key is missing' : 'must be a string or a list of strings'),
      })
      .describe('Accepted `aud` value(s): the token must be issued for Sluice (e.g. the resource indicator or client id).'),
    identityClaim: z
      .enum(IDENTITY_CLAIMS, { error: `must be one of ${IDENTITY_CLAIMS.join(', ')}` })
      .default('sub')
      .describe('Claim that names the identity: sub, client_id or azp. Clients connect with this value (or its identityMap entry) as the user name.'),
    identityMap: z
      .record(z.string().min(1), identityName)
      .optional()
      .describe('Claim value -> identity name. When given, only tokens whose claim value is listed are accepted.'),
    groupsClaim: z
      .string()
      .regex(CLAIM_PATH_PATTERN, { error: 'must be a claim name or a dotted path like realm_access.roles' })
      .default('groups')
      .describe('Claim holding the groups (a list of strings, or a space-separated string like `scope`); a dotted path reaches into objects.'),
    groups: z
      .array(z.string().min(1, { error: 'must not be empty' }))
      .default([])
      .describe('Groups every identity from this issuer gets, in addition to its groups claim.'),
    algorithms: z
      .array(z.enum(ASYMMETRIC_ALGS, { error: `must be one of ${ASYMMETRIC_ALGS.join(', ')} (none and HS* are never accepted)` }))
      .min(1, { error: 'give at least one algorithm' })
      .default([...ASYMMETRIC_ALGS])
      .describe('Signature algorithms accepted. Only asymmetric ones: `none` and HMAC (HS*) are refused.'),
    clockSkewSeconds: int(0, 300).default(30).describe('Tolerance for exp/nbf/iat against this machine\'s clock when a token is presented, in seconds.'),
    expiryGraceSeconds: int(0, 86400)
      .default(0)
      .describe('A session ends this many seconds after its token expires (0: at expiry).'),
    jwksRefetchIntervalSeconds: int(1, 3600)
      .default(30)
      .describe('A token signed with an unknown key id refetches the JWKS at most once per this many seconds (key rotation without letting forged kids hammer the issuer).'),
    introspection: IntrospectionSchema.optional(),
  })
  .describe('An OpenID Connect / OAuth 2 issuer whose tokens Sluice accepts as passwords.');

export const OidcSchema = z
  .strictObject({
    issuers: z
      .array(OidcIssuerSchema)
      .min(1, { error: 'give at least one issuer, or leave out the oidc section' })
      .superRefine((issuers, ctx) => {
        const seen = new Map<string, number>();
        const names = new Map<string, number>();
        issuers.forEach((iss, i) => {
          const key = normalizeIssuer(iss.issuer);
          const first = seen.get(key);
          if (first === undefined) seen.set(key, i);
          else ctx.addIssue({ code: 'custom', path: [i, 'issuer'], message: `duplicate issuer (already issuers[${first}])` });
          if (iss.name !== undefined) {
            const n = names.get(iss.name);
            if (n === undefined) names.set(iss.name, i);
            else ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate issuer name "${iss.name}" (already issuers[${n}])` });
          }
        });
        const withIntrospection = issuers.map((iss, i) => (iss.introspection ? i : -1)).filter((i) => i >= 0);
        if (withIntrospection.length > 1) {
          // An opaque token says nothing about who issued it; sending it to several providers would hand one
          // provider's credential to another.
          ctx.addIssue({
            code: 'custom',
            path: [withIntrospection[1]!, 'introspection'],
            message: `only one issuer may have introspection (already issuers[${withIntrospection[0]}]): an opaque token does not say which issuer it came from`,
          });
        }
      })
      .describe('Issuers whose JWT (or, with introspection, opaque) tokens are accepted as passwords.'),
  })
  .describe('Non-human identity: OIDC/OAuth 2 tokens presented as the PostgreSQL password.');

export type OidcConfig = z.infer<typeof OidcSchema>;
export type OidcIssuerConfig = OidcConfig['issuers'][number];
export type SecretSource = z.infer<typeof SecretSourceSchema>;

/** Issuer identifiers compared as URLs: `https://idp` and `https://idp/` are the same issuer. */
export function normalizeIssuer(issuer: string): string {
  try {
    return new URL(issuer).href;
  } catch {
    return issuer;
  }
}

/** Relative secret files resolved against the config file's directory (called by the config loader). */
export function resolveOidcPaths(oidc: OidcConfig, abs: (p: string) => string): OidcConfig {
  return {
    issuers: oidc.issuers.map((iss) =>
      iss.introspection && 'file' in iss.introspection.clientSecret
        ? { ...iss, introspection: { ...iss.introspection, clientSecret: { file: abs(iss.introspection.clientSecret.file) } } }
        : iss,
    ),
  };
}
