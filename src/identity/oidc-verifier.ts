/**
 * Verifies OIDC/OAuth 2 tokens presented as passwords: JWTs (access or ID tokens) against the issuer's JWKS,
 * opaque tokens at its introspection endpoint. Per issuer: discovery with openid-client, keys with jose's remote
 * JWKS (cached; an unknown `kid` refetches at most once per jwksRefetchIntervalSeconds).
 *
 * Nothing here logs or returns the token itself: reasons name claims and issuers only.
 */
import { readFileSync } from 'node:fs';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import { quote } from './claims.js';
import { insecureUrlProblem, isLoopbackHost, normalizeIssuer, type OidcConfig, type OidcIssuerConfig, type SecretSource } from './oidc-model.js';

export type TokenCheck =
  | { ok: true; issuer: OidcIssuerConfig; claims: Readonly<Record<string, unknown>>; /** ms since epoch */ expiresAt: number; via: 'jwt' | 'introspection' }
  | { ok: false; /** The issuer the token claimed, when it said; for the audit reason. */ issuer: string | null; reason: string };

/** A password longer than this is not parsed as a token (real ones are a few KiB at most). */
export const MAX_TOKEN_CHARS = 16 * 1024;
/** A failed discovery is retried on a later login, but not more often than this (the issuer may be down). */
const DISCOVERY_RETRY_MS = 10_000;
const HTTP_TIMEOUT_MS = 5_000;

const JWS_COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const JWE_COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
/** RFC 6750 b64token characters; an opaque token is sent to the issuer only when it could be one. */
const OPAQUE_TOKEN = /^[A-Za-z0-9\-._~+/]{16,4096}=*$/;

/** A compact JWS whose header decodes (`alg: none` tokens included: they are refused with a clear reason). */
export function looksLikeJwt(s: string): boolean {
  if (s.length > MAX_TOKEN_CHARS || !JWS_COMPACT.test(s)) return false;
  try {
    decodeProtectedHeader(s);
    return true;
  } catch {
    return false;
  }
}

export function looksLikeOpaqueToken(s: string): boolean {
  return OPAQUE_TOKEN.test(s) && !JWE_COMPACT.test(s);
}

interface Discovered {
  config: oidc.Configuration;
  /** The issuer as the provider states it (checked by openid-client to be the configured one). */
  issuer: string;
  jwks: ReturnType<typeof createRemoteJWKSet>;
}

/** One configured issuer: discovery, keys and introspection. */
class IssuerEndpoint {
  private discovery: Promise<Discovered> | null = null;
  private failure: { at: number; message: string } | null = null;

  constructor(
    readonly config: OidcIssuerConfig,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  /** Discovery once; after a failure, the same error until DISCOVERY_RETRY_MS has passed. */
  discover(now = Date.now()): Promise<Discovered> {
    if (this.discovery) return this.discovery;
    if (this.failure && now - this.failure.at < DISCOVERY_RETRY_MS) return Promise.reject(new Error(this.failure.message));
    const started = this.runDiscovery();
    this.discovery = started;
    started.catch((err: Error) => {
      this.failure = { at: Date.now(), message: err.message };
      if (this.discovery === started) this.discovery = null;
    });
    return started;
  }

  private async runDiscovery(): Promise<Discovered> {
    const c = this.config;
    const url = new URL(c.issuer);
    // http is only accepted for loopback issuers (checked by the config model); openid-client needs telling.
    const insecure = url.protocol === 'http:' && isLoopbackHost(url.hostname);
    const secret = c.introspection ? resolveSecret(c.introspection.clientSecret, this.env, `issuer ${c.issuer} introspection`) : undefined;
    let config: oidc.Configuration;
    try {
      config = await oidc.discovery(url, c.introspection?.clientId ?? 'sluice', secret, undefined, {
        execute: insecure ? [oidc.allowInsecureRequests] : [],
        timeout: HTTP_TIMEOUT_MS / 1000,
      });
    } catch (err) {
      throw new Error(`discovery failed for issuer ${c.issuer}: ${(err as Error).message}`);
    }
    const meta = config.serverMetadata();
    if (!meta.jwks_uri) throw new Error(`issuer ${c.issuer} publishes no jwks_uri`);
    for (const [what, u] of [['jwks_uri', meta.jwks_uri], ['introspection_endpoint', meta.introspection_endpoint]] as const) {
      const problem = u === undefined ? null : insecureUrlProblem(u, `issuer ${c.issuer} ${what}`);
      if (problem) throw new Error(problem);
    }
    if (c.introspection && !meta.introspection_endpoint) throw new Error(`issuer ${c.issuer} has introspection configured but publishes no introspection_endpoint`);
    const jwks = createRemoteJWKSet(new URL(meta.jwks_uri), {
      cooldownDuration: c.jwksRefetchIntervalSeconds * 1000,
      timeoutDuration: HTTP_TIMEOUT_MS,
    });
    return { config, issuer: meta.issuer, jwks };
  }

  async verifyJwt(token: string, header: ProtectedHeaderParameters, now: number): Promise<TokenCheck> {
    const c = this.config;
    const fail = (reason: string): TokenCheck => ({ ok: false, issuer: c.issuer, reason });
    // Checked before any key lookup, so a token with a refused algorithm never makes Sluice fetch keys.
    if (typeof header.alg !== 'string' || !(c.algorithms as readonly string[]).includes(header.alg)) {
      return fail(`token algorithm ${quote(String(header.alg))} is not allowed (allowed: ${c.algorithms.join(', ')})`);
    }
    let d: Discovered;
    try {
      d = await this.discover(now);
    } catch (err) {
      return fail(`Sluice cannot reach the issuer: ${(err as Error).message}`);
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, d.jwks, {
        issuer: d.issuer,
        audience: c.audience,
        algorithms: c.algorithms,
        clockTolerance: c.clockSkewSeconds,
        requiredClaims: ['exp'],
        currentDate: new Date(now),
      }));
    } catch (err) {
      return fail(describeJoseError(err, c, header));
    }
    return { ok: true, issuer: c, claims: payload, expiresAt: payload.exp! * 1000, via: 'jwt' };
  }

  /** RFC 7662: the issuer says whether the token is active; Sluice still checks iss, aud and the times. */
  async introspect(token: string, now: number): Promise<TokenCheck> {
    const c = this.config;
    const fail = (reason: string): TokenCheck => ({ ok: false, issuer: c.issuer, reason });
    let d: Discovered;
    let r: oidc.IntrospectionResponse;
    try {
      d = await this.discover(now);
    } catch (err) {
      return fail(`Sluice cannot reach the issuer: ${(err as Error).message}`);
    }
    try {
      r = await oidc.tokenIntrospection(d.config, token, { token_type_hint: 'access_token' });
    } catch (err) {
      return fail(`token introspection failed: ${(err as Error).message}`);
    }
    if (r.active !== true) return fail('the issuer says the token is not active (expired, revoked or unknown)');
    if (r.iss !== undefined && normalizeIssuer(String(r.iss)) !== normalizeIssuer(d.issuer)) return fail(`introspection names issuer ${quote(String(r.iss))}, not ${c.issuer}`);
    const wanted = Array.isArray(c.audience) ? c.audience : [c.audience];
    const aud = r.aud === undefined ? [] : Array.isArray(r.aud) ? r.aud : [r.aud];
    if (!aud.some((a) => wanted.includes(a))) {
      return fail(aud.length === 0 ? `the token has no audience; Sluice needs ${wanted.join(' or ')}` : `token audience ${quote(aud.join(' '))} is not ${wanted.join(' or ')}`);
    }
    const skew = c.clockSkewSeconds * 1000;
    // A token without an expiry would give an unbounded session: refused.
    if (typeof r.exp !== 'number') return fail('the token has no expiry (exp)');
    if (r.exp * 1000 + skew <= now) return fail(`token expired at ${iso(r.exp)}`);
    if (typeof r.nbf === 'number' && r.nbf * 1000 - skew > now) return fail(`token is not valid before ${iso(r.nbf)}`);
    return { ok: true, issuer: c, claims: r, expiresAt: r.exp * 1000, via: 'introspection' };
  }
}

export class OidcVerifier {
  private readonly byIssuer = new Map<string, IssuerEndpoint>();
  private readonly introspector: IssuerEndpoint | null;

  constructor(config: OidcConfig, env: NodeJS.ProcessEnv = process.env) {
    let introspector: IssuerEndpoint | null = null;
    for (const c of config.issuers) {
      const e = new IssuerEndpoint(c, env);
      this.byIssuer.set(normalizeIssuer(c.issuer), e);
      if (c.introspection) introspector = e;
    }
    this.introspector = introspector;
  }

  /** Whether opaque tokens can be checked (an issuer has introspection configured). */
  get acceptsOpaque(): boolean {
    return this.introspector !== null;
  }

  /** Discovers every issuer now so the first login does not wait; failures are retried on demand. */
  async prepare(log: (msg: string) => void): Promise<void> {
    await Promise.all([...this.byIssuer.values()].map((e) => e.discover().catch((err: Error) => log(`${err.message} (retried at the next login with its tokens)`))));
  }

  async verify(token: string, now = Date.now()): Promise<TokenCheck> {
    if (token.length > MAX_TOKEN_CHARS) return { ok: false, issuer: null, reason: `the token is longer than ${MAX_TOKEN_CHARS} characters` };
    if (!looksLikeJwt(token)) {
      if (JWE_COMPACT.test(token)) return { ok: false, issuer: null, reason: 'encrypted tokens (JWE) are not accepted; use a signed JWT' };
      if (this.introspector && looksLikeOpaqueToken(token)) return this.introspector.introspect(token, now);
      return { ok: false, issuer: null, reason: 'the password is neither an agent key nor a token Sluice can verify' };
    }
    let header: ProtectedHeaderParameters;
    let claims: JWTPayload;
    try {
      header = decodeProtectedHeader(token);
      claims = decodeJwt(token);
    } catch {
      return { ok: false, issuer: null, reason: 'the token is not a well-formed JWT' };
    }
    if (typeof claims.iss !== 'string') return { ok: false, issuer: null, reason: 'the token has no issuer (iss)' };
    const endpoint = this.byIssuer.get(normalizeIssuer(claims.iss));
    if (!endpoint) return { ok: false, issuer: claims.iss.slice(0, 200), reason: `token issuer ${quote(claims.iss)} is not trusted by Sluice` };
    return endpoint.verifyJwt(token, header, now);
  }
}

function describeJoseError(err: unknown, c: OidcIssuerConfig, header: ProtectedHeaderParameters): string {
  const e = err as { code?: string; claim?: string; message?: string; payload?: JWTPayload };
  switch (e.code) {
    case 'ERR_JWT_EXPIRED':
      return `token expired${typeof e.payload?.exp === 'number' ? ` at ${iso(e.payload.exp)}` : ''}`;
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (e.claim === 'nbf') return `token is not valid yet${typeof e.payload?.nbf === 'number' ? ` (not before ${iso(e.payload.nbf)})` : ''}`;
      if (e.claim === 'aud') return `token audience ${quote(audienceOf(e.payload))} is not ${[c.audience].flat().join(' or ')}`;
      if (e.claim === 'iss') return `token issuer does not match ${c.issuer}`;
      if (e.claim === 'exp') return 'the token has no expiry (exp)';
      if (e.claim === 'iat') return 'token issued-at time (iat) is in the future';
      return `token claim ${quote(e.claim ?? '?')} is invalid`;
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'token signature is invalid (tampered, or signed by another key)';
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return `no key in the issuer's JWKS matches the token (kid ${quote(String(header.kid ?? '(none)'))}, alg ${header.alg}); keys are refetched at most every ${c.jwksRefetchIntervalSeconds} s`;
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return 'the token names no kid and several of the issuer\'s keys could have signed it';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return `token algorithm ${quote(String(header.alg))} is not allowed (allowed: ${c.algorithms.join(', ')})`;
    case 'ERR_JWKS_TIMEOUT':
      return 'the issuer\'s JWKS did not answer in time';
    case 'ERR_JWT_INVALID':
    case 'ERR_JWS_INVALID':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return `the token is malformed: ${e.message ?? 'invalid'}`;
    default:
      return `token could not be verified: ${e.message ?? String(err)}`;
  }
}

function audienceOf(p: JWTPayload | undefined): string {
  const a = p?.aud;
  return a === undefined ? '(none)' : Array.isArray(a) ? a.join(' ') : a;
}

function iso(seconds: number): string {
  return new Date(seconds * 1000).toISOString();
}

/** A client secret from the environment or a file; the error names where, never the value. */
export function resolveSecret(source: SecretSource, env: NodeJS.ProcessEnv, what: string): string {
  if ('env' in source) {
    const v = env[source.env];
    if (!v) throw new Error(`${what}: environment variable ${source.env} is ${v === undefined ? 'not set' : 'empty'}`);
    return v;
  }
  let text: string;
  try {
    text = readFileSync(source.file, 'utf8');
  } catch (err) {
    throw new Error(`${what}: cannot read secret file ${source.file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const v = text.replace(/\r?\n$/, '');
  if (!v) throw new Error(`${what}: secret file ${source.file} is empty`);
  return v;
}
