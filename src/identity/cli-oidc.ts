/**
 * `sluice token` and `sluice exec`: get a token with the client-credentials grant and print it, or run a command
 * with the PG* variables set so that psql or any libpq/driver connects through Sluice with it.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import * as oidc from 'openid-client';
import { decodeJwt } from 'jose';
import type { SluiceConfig } from '../config/model.js';
import { mapClaims } from './claims.js';
import { insecureUrlProblem, isLoopbackHost, normalizeIssuer, type OidcIssuerConfig } from './oidc-model.js';
import { looksLikeJwt } from './oidc-verifier.js';

type Out = { log(s: string): void; error(s: string): void };
/** Loads the config named by --config (or the default one); null when there is none. */
export type LoadConfig = (explicit: string | undefined) => SluiceConfig | null;

const DEFAULT_SECRET_ENV = 'SLUICE_CLIENT_SECRET';

const TOKEN_OPTIONS = `  --issuer I              issuer URL, or the name of an issuer in the config (oidc.issuers[].name)
  --client-id ID          OAuth client id
  --client-secret-env V   environment variable holding the client secret (default ${DEFAULT_SECRET_ENV});
                          secrets are never taken on the command line
  --scope S               scope to request (space-separated)
  --resource R            resource indicator (RFC 8707) naming Sluice, when the issuer uses them
  --config FILE           config file (default: $SLUICE_CONFIG, else ./sluice.yaml if present)`;

export const TOKEN_HELP = `sluice token --issuer I --client-id ID [--client-secret-env VAR] [--scope S] [--resource R]

Gets an access token with the client-credentials grant and prints it on stdout (nothing else), for use as the
PostgreSQL password through Sluice.
${TOKEN_OPTIONS}`;

export const EXEC_HELP = `sluice exec --target T --issuer I --client-id ID [--client-secret-env VAR] [--scope S] [--resource R] [--user U] -- CMD [ARGS...]

Gets an access token with the client-credentials grant and runs CMD with PGHOST, PGPORT (Sluice's listen
address), PGDATABASE (the target), PGUSER (the identity the token names) and PGPASSWORD (the token) set, so
psql or any driver connects through Sluice. Exits with CMD's exit code.
  --target T              Sluice target (the database name clients select)
  --user U                identity to connect as (default: read from the token; needed for opaque tokens)
${TOKEN_OPTIONS}

Example: sluice exec --target shop --issuer ci-idp --client-id deployer -- psql -c 'select 1'`;

class UsageError extends Error {}

const OPTIONS = {
  issuer: { type: 'string' }, 'client-id': { type: 'string' }, 'client-secret-env': { type: 'string' },
  scope: { type: 'string' }, resource: { type: 'string' }, config: { type: 'string' }, help: { type: 'boolean', short: 'h' },
} as const;
const EXEC_OPTIONS = { ...OPTIONS, target: { type: 'string' }, user: { type: 'string' } } as const;

export async function tokenCommand(argv: string[], out: Out, loadConfig: LoadConfig): Promise<number> {
  return usage(out, TOKEN_HELP, async () => {
    const { values, positionals } = parse(argv, OPTIONS, TOKEN_HELP);
    if (values.help) { out.log(TOKEN_HELP); return 0; }
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const req = tokenRequest(values, loadConfig(values.config));
    const token = await fetchToken(req);
    out.error(`token from ${req.issuerUrl} for client ${req.clientId}${token.expiresIn ? `, expires in ${token.expiresIn} s` : ''}`);
    out.log(token.accessToken);
    return 0;
  });
}

export async function execCommand(argv: string[], out: Out, loadConfig: LoadConfig): Promise<number> {
  // Everything after `--` is the command, untouched (its own options must not be read as ours).
  const dash = argv.indexOf('--');
  const own = dash < 0 ? argv : argv.slice(0, dash);
  const cmd = dash < 0 ? [] : argv.slice(dash + 1);
  return usage(out, EXEC_HELP, async () => {
    const { values, positionals } = parse(own, EXEC_OPTIONS, EXEC_HELP);
    if (values.help) { out.log(EXEC_HELP); return 0; }
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}": put the command after --`);
    if (cmd.length === 0) throw new UsageError('no command given: put it after --, e.g. sluice exec ... -- psql');
    if (!values.target) throw new UsageError('--target is required');
    const config = loadConfig(values.config);
    if (!config) throw new UsageError('sluice exec needs the Sluice config file (for the listen address, targets and issuers): pass --config FILE');
    if (!config.targets.some((t) => t.name === values.target)) {
      throw new UsageError(`no target "${values.target}" in the config (targets: ${config.targets.map((t) => t.name).join(', ')})`);
    }
    const req = tokenRequest(values, config);
    if (!req.issuer) throw new UsageError(`issuer ${req.issuerUrl} is not in the config's oidc.issuers: Sluice would refuse its tokens`);
    const { accessToken } = await fetchToken(req);
    const user = values.user ?? identityOf(accessToken, req.issuer);
    const env: NodeJS.ProcessEnv = { ...process.env };
    // These would override or redirect the variables set below (libpq reads PGHOSTADDR before PGHOST, services first).
    for (const k of ['PGHOSTADDR', 'PGSERVICE', 'PGSERVICEFILE', 'PGPASSFILE']) delete env[k];
    Object.assign(env, {
      PGHOST: connectHost(config.listen.host), PGPORT: String(config.listen.port),
      PGDATABASE: values.target, PGUSER: user, PGPASSWORD: accessToken,
    });
    return run(cmd, env, out);
  });
}

interface TokenRequest {
  issuerUrl: string;
  issuer: OidcIssuerConfig | undefined;
  clientId: string;
  secret: string;
  scope: string | undefined;
  resource: string | undefined;
}

function tokenRequest(values: Record<string, string | boolean | undefined>, config: SluiceConfig | null): TokenRequest {
  const ref = str(values.issuer);
  const clientId = str(values['client-id']);
  if (!ref) throw new UsageError('--issuer is required');
  if (!clientId) throw new UsageError('--client-id is required');
  const issuer = config?.oidc?.issuers.find((i) => i.name === ref || normalizeIssuer(i.issuer) === normalizeIssuer(ref));
  const issuerUrl = issuer?.issuer ?? ref;
  const problem = insecureUrlProblem(issuerUrl, '--issuer');
  if (problem) throw new UsageError(issuer ? problem : `${problem} (or the name of an issuer in the config)`);
  const secretEnv = str(values['client-secret-env']) ?? DEFAULT_SECRET_ENV;
  const secret = process.env[secretEnv];
  if (!secret) {
    throw new UsageError(`environment variable ${secretEnv} is ${secret === undefined ? 'not set' : 'empty'}: it must hold the client secret (choose the variable with --client-secret-env)`);
  }
  return { issuerUrl, issuer, clientId, secret, scope: str(values.scope), resource: str(values.resource) };
}

async function fetchToken(r: TokenRequest): Promise<{ accessToken: string; expiresIn: number | undefined }> {
  const url = new URL(r.issuerUrl);
  const insecure = url.protocol === 'http:' && isLoopbackHost(url.hostname);
  let config: oidc.Configuration;
  try {
    config = await oidc.discovery(url, r.clientId, r.secret, undefined, { execute: insecure ? [oidc.allowInsecureRequests] : [], timeout: 10 });
  } catch (err) {
    throw new Error(`discovery failed for issuer ${r.issuerUrl}: ${(err as Error).message}`);
  }
  const params: Record<string, string> = {};
  if (r.scope) params.scope = r.scope;
  if (r.resource) params.resource = r.resource;
  try {
    const res = await oidc.clientCredentialsGrant(config, params);
    return { accessToken: res.access_token, expiresIn: res.expires_in };
  } catch (err) {
    const e = err as { error?: string; error_description?: string; message: string };
    throw new Error(`the issuer refused the client-credentials grant for client ${r.clientId}: ${e.error ? `${e.error}${e.error_description ? ` (${e.error_description})` : ''}` : e.message}`);
  }
}

/** The identity Sluice will see: the token's claims mapped the way the issuer's config says (see claims.ts). */
function identityOf(token: string, issuer: OidcIssuerConfig): string {
  if (!looksLikeJwt(token)) throw new UsageError('the issuer returned an opaque token, which names no identity Sluice could read here: pass --user NAME');
  const mapped = mapClaims(decodeJwt(token), issuer);
  if (!mapped.ok) throw new Error(`Sluice would refuse this token: ${mapped.reason}`);
  return mapped.name;
}

/** Where a client on this machine reaches the listener (a wildcard bind is reached on loopback). */
function connectHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}

function run(cmd: string[], env: NodeJS.ProcessEnv, out: Out): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(cmd[0]!, cmd.slice(1), { stdio: 'inherit', env });
    // Ctrl-C reaches the child through the terminal; sluice stays alive to report its exit code.
    const forward = (sig: NodeJS.Signals) => child.kill(sig);
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    for (const s of signals) process.on(s, forward);
    let settled = false;
    const done = (code: number) => {
      if (settled) return;
      settled = true;
      for (const s of signals) process.off(s, forward);
      resolve(code);
    };
    child.on('error', (err: NodeJS.ErrnoException) => {
      out.error(`sluice exec: cannot run ${cmd[0]}: ${err.code === 'ENOENT' ? 'command not found' : err.message}`);
      done(err.code === 'ENOENT' ? 127 : 126);
    });
    child.on('exit', (code, signal) => done(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0)));
  });
}

function parse<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O, help: string) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${help}`);
  }
}

async function usage(out: Out, help: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    out.error(err.message.includes(help) ? err.message : `${err.message}\n\n${help}`);
    return 2;
  }
}

function str(v: string | boolean | undefined): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}
