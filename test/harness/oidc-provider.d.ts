/**
 * The part of oidc-provider 9 the test issuer uses. The package ships no types and @types/oidc-provider is not a
 * dependency; this states only what test/harness/oidc.ts calls, so a mismatch shows up at its call sites.
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  interface ClientLike { clientId: string }
  interface TokenLike { clientId?: string; resourceServer?: { accessTokenTTL?: number } }
  interface ResourceServerInfo { scope: string; audience?: string; accessTokenFormat?: 'opaque' | 'jwt'; accessTokenTTL?: number }

  interface Configuration {
    clients?: Array<Record<string, unknown>>;
    jwks?: { keys: Array<Record<string, unknown>> };
    features?: {
      devInteractions?: { enabled: boolean };
      clientCredentials?: { enabled: boolean };
      introspection?: { enabled: boolean; allowedPolicy?: (ctx: unknown, client: ClientLike, token: TokenLike) => Promise<boolean> };
      resourceIndicators?: {
        enabled: boolean;
        defaultResource?: (ctx: unknown, client: ClientLike, oneOf?: string[]) => Promise<string | string[] | undefined>;
        useGrantedResource?: (ctx: unknown, model: unknown) => Promise<boolean>;
        getResourceServerInfo?: (ctx: unknown, resourceIndicator: string, client: ClientLike) => Promise<ResourceServerInfo>;
      };
    };
    ttl?: { ClientCredentials?: number | ((ctx: unknown, token: TokenLike, client: ClientLike) => number) };
    extraTokenClaims?: (ctx: unknown, token: TokenLike) => Promise<Record<string, unknown> | undefined>;
  }

  class Provider {
    constructor(issuer: string, configuration?: Configuration);
    callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
    static errors: { InvalidTarget: new (description?: string) => Error };
  }
  export default Provider;
}
