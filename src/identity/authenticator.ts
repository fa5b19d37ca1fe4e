/**
 * Decides who a client is from the password it presented: a Sluice agent key, or an OIDC/OAuth 2 token from a
 * configured issuer. The StartupMessage `user` must be the identity the credential names. Produces the
 * PostgreSQL error a refused client sees and the reason the audit log records (never the secret itself).
 */
import { SqlState } from '../protocol/codes.js';
import type { AgentKeyStore, Identity } from './agent-keys.js';
import { mapClaims } from './claims.js';
import type { IdentityStore } from './identity-store.js';
import { looksLikeJwt, looksLikeOpaqueToken, type OidcVerifier } from './oidc-verifier.js';

const AGENT_KEY_SHAPE = /^sk_/;

export type AuthOutcome =
  | {
    ok: true;
    identity: Identity;
    kind: 'key' | 'oidc';
    /** For the audit trail: how the identity was proven. */
    detail: Readonly<Record<string, unknown>>;
    /** When the session must end (token expiry + tolerance + grace), ms since epoch; null: never. */
    endsAt: number | null;
    /** The token's own expiry, for the message at endsAt. */
    expiresAt: number | null;
  }
  | {
    ok: false;
    /** CannotConnectNow: the broker refuses new sessions for now (paused by an operator). */
    code: typeof SqlState.InvalidPassword | typeof SqlState.InvalidAuthorization | typeof SqlState.CannotConnectNow;
    message: string;
    hint: string;
    /** Recorded as the refused session's end reason. */
    auditReason: string;
  };

export interface AuthenticatorDeps {
  keys: Pick<AgentKeyStore, 'verify'>;
  /** Absent when no issuer is configured: tokens are then refused and agent keys work as before. */
  oidc?: OidcVerifier | undefined;
  identities?: Pick<IdentityStore, 'seen'> | undefined;
}

export class Authenticator {
  constructor(private readonly deps: AuthenticatorDeps) {}

  /** Rejects only if a store cannot be read or written (callers refuse the login). */
  async authenticate(user: string, secret: string, now = Date.now()): Promise<AuthOutcome> {
    const { oidc } = this.deps;
    if (!AGENT_KEY_SHAPE.test(secret)) {
      if (looksLikeJwt(secret) || (oidc?.acceptsOpaque && looksLikeOpaqueToken(secret))) {
        if (!oidc) {
          return refused(SqlState.InvalidPassword, user, 'OIDC tokens are not accepted here: no issuer is configured (oidc.issuers)', 'authentication failed: oidc: no issuer configured',
            'Use a Sluice agent key (sk_...) as the password, or ask the operator to configure your identity provider.');
        }
        return this.withToken(oidc, user, secret, now);
      }
    }
    return this.withKey(user, secret, now);
  }

  private async withKey(user: string, secret: string, now: number): Promise<AuthOutcome> {
    const check = await this.deps.keys.verify(user, secret, now);
    if (!check.ok) {
      const why = check.reason === 'expired' ? ' (agent key expired)' : check.reason === 'revoked' ? ' (agent key revoked)' : '';
      return {
        ok: false,
        code: SqlState.InvalidPassword,
        message: `password authentication failed for user "${user}"${why}`,
        hint: this.deps.oidc
          ? 'Use a Sluice agent key (sk_...) or a token from a configured OIDC issuer as the password.'
          : 'Use a Sluice agent key (sk_...) as the password; create one with `sluice key add NAME`.',
        auditReason: `authentication failed: ${check.reason}`,
      };
    }
    this.deps.identities?.seen({ kind: 'key', name: check.identity.name, issuer: null, subject: null, groups: check.identity.groups }, now);
    return { ok: true, identity: check.identity, kind: 'key', detail: { kind: 'key' }, endsAt: null, expiresAt: null };
  }

  private async withToken(oidc: OidcVerifier, user: string, token: string, now: number): Promise<AuthOutcome> {
    const check = await oidc.verify(token, now);
    if (!check.ok) {
      return refused(SqlState.InvalidPassword, user, check.reason, `authentication failed: oidc (${check.issuer ?? 'no trusted issuer'}): ${check.reason}`,
        'Present a current token from a configured issuer (`sluice token` or `sluice exec` gets one), or a Sluice agent key.');
    }
    const iss = check.issuer;
    const mapped = mapClaims(check.claims, iss);
    if (!mapped.ok) {
      return {
        ok: false,
        code: SqlState.InvalidAuthorization,
        message: `the token cannot log in as user "${user}": ${mapped.reason}`,
        hint: 'Ask the operator to map this token\'s identity (identityClaim / identityMap of the issuer in the Sluice config).',
        auditReason: `authentication failed: oidc (${iss.issuer}): ${mapped.reason}`,
      };
    }
    if (mapped.name !== user) {
      const reason = `the token names identity "${mapped.name}", not "${user}"`;
      return {
        ok: false,
        code: SqlState.InvalidAuthorization,
        message: `token for identity "${mapped.name}" cannot log in as user "${user}"`,
        hint: `Connect with user=${mapped.name}: the user name must be the identity the token names (claim ${iss.identityClaim}${iss.identityMap ? ' via identityMap' : ''}).`,
        auditReason: `authentication failed: oidc (${iss.issuer}): ${reason}`,
      };
    }
    // The same tolerance the login had (clock skew), then the configured grace.
    const endsAt = check.expiresAt + (iss.clockSkewSeconds + iss.expiryGraceSeconds) * 1000;
    this.deps.identities?.seen({ kind: 'oidc', name: mapped.name, issuer: iss.issuer, subject: mapped.subject, groups: mapped.groups }, now);
    return {
      ok: true,
      identity: { name: mapped.name, groups: mapped.groups },
      kind: 'oidc',
      detail: { kind: 'oidc', issuer: iss.issuer, via: check.via, subject: mapped.subject, groups: mapped.groups, tokenExpiresAt: check.expiresAt },
      endsAt,
      expiresAt: check.expiresAt,
    };
  }
}

function refused(code: typeof SqlState.InvalidPassword, user: string, reason: string, auditReason: string, hint: string): AuthOutcome {
  return { ok: false, code, message: `password authentication failed for user "${user}": ${reason}`, hint, auditReason };
}
