/**
 * A real OpenID provider (oidc-provider) on loopback for identity tests: client-credentials grant, JWT access
 * tokens through resource indicators, opaque tokens + introspection, key rotation, and a request counter per path
 * (to see how often Sluice fetches the JWKS). Forged tokens are made with jose in the tests themselves.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import * as oidc from 'openid-client';
import Provider from 'oidc-provider';

/** Resource indicator for JWT access tokens, and the audience Sluice is configured with. */
export const AUDIENCE = 'urn:sluice';
/** Resource indicator for opaque access tokens (audience still AUDIENCE). */
export const OPAQUE_RESOURCE = 'urn:sluice:opaque';

export interface TestClient {
  id: string;
  secret: string;
  /** Put in the tokens' `groups` claim. */
  groups: string[];
  /** Access token lifetime in seconds. */
  ttl: number;
}

/** ci: groups [test] (the harness policy allows everything); outsider: no allowed group; short: 3 s tokens. */
export const CLIENTS: Record<'ci' | 'outsider' | 'short' | 'introspector', TestClient> = {
  ci: { id: 'ci', secret: 'ci-secret-0123456789', groups: ['test'], ttl: 300 },
  outsider: { id: 'outsider', secret: 'outsider-secret-0123456789', groups: ['outsiders'], ttl: 300 },
  short: { id: 'short', secret: 'short-secret-0123456789', groups: ['test'], ttl: 3 },
  introspector: { id: 'sluice-introspector', secret: 'introspector-secret-0123456789', groups: [], ttl: 300 },
};

interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  jwk: JWK;
}

export interface TestIssuer {
  /** http://127.0.0.1:PORT, no trailing slash (as the `iss` of its tokens). */
  issuer: string;
  /** Requests received per path since start (e.g. '/jwks'). */
  requests(path: string): number;
  /** A real access token from the client-credentials grant. */
  token(client: TestClient, opts?: { resource?: string; scope?: string }): Promise<string>;
  /** A token signed with the issuer's current real key; claims default to a valid one for `ci`. */
  sign(claims?: JWTPayload, header?: { kid?: string; alg?: string }): Promise<string>;
  /** The current signing key's public key as PEM (for key-confusion forgeries). */
  publicKeyPem(): Promise<string>;
  currentKid(): string;
  /** Rotates: a new key signs from now on; the old one stays published. */
  rotate(): Promise<void>;
  close(): Promise<void>;
}

async function newKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
  return { kid, privateKey, publicKey, jwk };
}

function makeProvider(issuer: string, keys: SigningKey[]): Provider {
  const clients = Object.values(CLIENTS);
  const byId = new Map(clients.map((c) => [c.id, c]));
  return new Provider(issuer, {
    clients: clients.map((c) => ({ client_id: c.id, client_secret: c.secret, grant_types: ['client_credentials'], redirect_uris: [], response_types: [] })),
    jwks: { keys: keys.map((k) => k.jwk) },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      // Any authenticated client may introspect (Sluice introspects tokens issued to other clients).
      introspection: { enabled: true, allowedPolicy: async () => true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => undefined,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resource, client) => {
          if (resource !== AUDIENCE && resource !== OPAQUE_RESOURCE) throw new Provider.errors.InvalidTarget();
          return {
            scope: 'db',
            audience: AUDIENCE,
            accessTokenFormat: resource === OPAQUE_RESOURCE ? 'opaque' : 'jwt',
            accessTokenTTL: byId.get(client.clientId)?.ttl ?? 300,
          };
        },
      },
    },
    ttl: { ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 300 },
    extraTokenClaims: async (_ctx, token) => {
      const id = 'clientId' in token ? token.clientId : undefined;
      return { groups: byId.get(String(id))?.groups ?? [] };
    },
  });
}

export async function startIssuer(): Promise<TestIssuer> {
  const counts = new Map<string, number>();
  let provider: Provider | null = null;
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    if (!provider) { res.statusCode = 503; res.end(); return; }
    void provider.callback()(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let generation = 1;
  let keys = [await newKey('key-1')];
  provider = makeProvider(issuer, keys);

  const configs = new Map<string, Promise<oidc.Configuration>>();
  const clientConfig = (c: TestClient) => {
    let p = configs.get(c.id);
    if (!p) {
      p = oidc.discovery(new URL(issuer), c.id, c.secret, undefined, { execute: [oidc.allowInsecureRequests] });
      configs.set(c.id, p);
    }
    return p;
  };

  return {
    issuer,
    requests: (path) => counts.get(path) ?? 0,
    async token(client, opts = {}) {
      const r = await oidc.clientCredentialsGrant(await clientConfig(client), { resource: opts.resource ?? AUDIENCE, scope: opts.scope ?? 'db' });
      return r.access_token;
    },
    async sign(claims = {}, header = {}) {
      const now = Math.floor(Date.now() / 1000);
      const key = keys[0]!;
      return new SignJWT({ client_id: 'ci', sub: 'ci', groups: ['test'], iss: issuer, aud: AUDIENCE, iat: now, exp: now + 300, ...claims })
        .setProtectedHeader({ alg: header.alg ?? 'RS256', typ: 'at+jwt', kid: header.kid ?? key.kid })
        .sign(key.privateKey);
    },
    publicKeyPem: () => exportSPKI(keys[0]!.publicKey),
    currentKid: () => keys[0]!.kid,
    async rotate() {
      generation++;
      keys = [await newKey(`key-${generation}`), ...keys];
      // oidc-provider fixes its keystore at construction: the rotated issuer is a new instance on the same URL.
      provider = makeProvider(issuer, keys);
      configs.clear();
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
