/**
 * The Sluice config file model. One zod schema is the single source of truth: `load.ts` validates with it,
 * and `schema.ts` turns it into the JSON Schema that the rules editor uses. Every object is strict so a
 * misspelt key is an error instead of a silently ignored setting.
 */
import { z } from 'zod';
import { PolicySchema } from '../policy/model.js';
import { OidcSchema } from '../identity/oidc-model.js';
import { MaskingSchema } from '../masking/model.js';

export const TARGET_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,63}$/;
const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

const LITERAL_PASSWORD_REFUSED =
  'a literal password is refused: secrets do not belong in config files; ' +
  'use { env: VARIABLE_NAME } or { file: ./path/to/secret }';

const filePath = (what: string) =>
  z.string().min(1, { error: `${what} must not be empty` }).describe(`${what}; relative paths are resolved against the config file's directory`);

const int = (min: number, max: number) =>
  z.number().int({ error: 'expected an integer' }).min(min, { error: `must be >= ${min}` }).max(max, { error: `must be <= ${max}` });

export const ListenSchema = z
  .strictObject({
    host: z
      .union([z.ipv4(), z.ipv6(), z.literal('localhost')], {
        error: 'must be a literal IP address (e.g. 127.0.0.1, ::1) or "localhost"; host names are not resolved',
      })
      .default('127.0.0.1')
      .describe('Address the proxy listens on: a literal IPv4/IPv6 address or "localhost". Keep it on loopback unless TLS is configured.'),
    port: int(0, 65535).default(6432).describe('TCP port the proxy listens on; 0 picks a free port.'),
  })
  .describe('Where clients connect to Sluice.');

export const ListenerTlsSchema = z
  .strictObject({
    cert: filePath('PEM certificate (chain) presented to clients'),
    key: filePath('PEM private key for the certificate'),
  })
  .describe('Client-facing TLS termination. Without it, clients may only send passwords over loopback.');

export const LimitsSchema = z
  .strictObject({
    maxClientConnections: int(1, Number.MAX_SAFE_INTEGER).default(200).describe('Maximum concurrent client connections.'),
    maxMessageBytes: int(1024, 1073741824)
      .default(16777216)
      .describe('Largest protocol message accepted from a client, in bytes; larger frames close the connection.'),
    maxServerMessageBytes: int(1024, 1073741824)
      .default(1073741824)
      .describe('Largest protocol message accepted from an upstream PostgreSQL server, in bytes.'),
    authTimeoutMs: int(100, 600000).default(10000).describe('Time a client has to complete startup and authentication, in ms.'),
    connectTimeoutMs: int(100, 600000).default(10000).describe('Time allowed to connect and authenticate to a target, in ms.'),
  })
  .describe('Resource limits; every field has a default.');

export const PasswordSourceSchema = z
  .union(
    [
      z
        .strictObject({
          env: z
            .string()
            .regex(ENV_NAME_PATTERN, { error: 'must be an environment variable name like SHOP_PG_PASSWORD' })
            .describe('Name of the environment variable holding the password; read when Sluice connects.'),
        })
        .describe('Password read from an environment variable.'),
      z
        .strictObject({ file: filePath('File holding the password (one trailing newline is stripped); read when Sluice connects') })
        .describe('Password read from a file.'),
    ],
    {
      // Never echo the input: for a literal password it is the secret itself.
      error: (issue) => {
        if (typeof issue.input === 'string') return LITERAL_PASSWORD_REFUSED;
        const input = issue.input;
        if (input !== null && typeof input === 'object' && 'env' in input && 'file' in input) {
          return 'give exactly one of env or file, not both';
        }
        return 'must be { env: VARIABLE_NAME } or { file: ./path/to/secret }';
      },
    },
  )
  .describe('Where the real database password comes from. Literal passwords are refused. Omit for trust/peer auth.');

export const TLS_MODES = ['disable', 'prefer', 'require', 'verify-full'] as const;

export const TargetTlsSchema = z
  .strictObject({
    mode: z
      .enum(TLS_MODES, { error: `must be one of ${TLS_MODES.join(', ')}` })
      .default('prefer')
      .describe(
        'disable: plaintext. prefer: TLS if the server offers it, unverified. require: TLS, unverified. ' +
          'verify-full: TLS, certificate checked against `ca` and host name checked.',
      ),
    ca: filePath('PEM CA certificate(s) used to verify the server (verify-full only)').optional(),
  })
  .superRefine((tls, ctx) => {
    if (tls.mode === 'verify-full' && tls.ca === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['ca'],
        message: 'mode verify-full needs ca (a PEM CA file); Sluice does not fall back to the system roots',
      });
    }
    if (tls.mode !== 'verify-full' && tls.ca !== undefined) {
      // A CA next to an unverified mode reads like verification is on; say it is not rather than ignore it.
      ctx.addIssue({
        code: 'custom',
        path: ['ca'],
        message: `ca is only used with mode verify-full; mode ${tls.mode} does not verify the server certificate`,
      });
    }
  })
  .describe('TLS from Sluice to this target.');

export const TargetSchema = z
  .strictObject({
    name: z
      .string()
      .regex(TARGET_NAME_PATTERN, { error: 'must be 1-63 characters of letters, digits, _ . -' })
      .describe('Target name; clients select it as the `database` in their connection string.'),
    host: z.string().min(1, { error: 'must not be empty' }).max(253).describe('Host name or IP address of the PostgreSQL server.'),
    port: int(1, 65535).default(5432).describe('PostgreSQL server port.'),
    database: z.string().min(1, { error: 'must not be empty' }).describe('Database name on the server.'),
    user: z.string().min(1, { error: 'must not be empty' }).describe('Role Sluice logs in as; clients never see its credential.'),
    password: PasswordSourceSchema.optional(),
    tls: TargetTlsSchema.prefault({}),
  })
  .describe('A PostgreSQL database that clients can reach through Sluice.');

export const ConfigSchema = z
  .strictObject({
    listen: ListenSchema.prefault({}),
    dataDir: z
      .string()
      .min(1, { error: 'must not be empty' })
      .default('.sluice')
      .describe("Directory for Sluice's SQLite stores (agent keys, audit); relative to the config file's directory."),
    tls: ListenerTlsSchema.optional(),
    limits: LimitsSchema.prefault({}),
    targets: z
      .array(TargetSchema)
      .min(1, { error: 'at least one target is required' })
      .superRefine((targets, ctx) => {
        const firstIndex = new Map<string, number>();
        targets.forEach((target, i) => {
          const first = firstIndex.get(target.name);
          if (first === undefined) firstIndex.set(target.name, i);
          else ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate target name "${target.name}" (already used by targets[${first}])` });
        });
      })
      .describe('Databases reachable through Sluice; names must be unique.'),
    policy: PolicySchema.optional(),
    ui: z
      .strictObject({
        port: int(0, 65535)
          .default(6433)
          .describe('Loopback port of the operator API and UI (`sluice serve`), always on 127.0.0.1 and guarded by a token printed at start; 0 picks a free port.'),
      })
      .prefault({})
      .describe('The operator API (WebSocket) and UI of `sluice serve`.'),
    oidc: OidcSchema.optional(),
    masking: MaskingSchema.optional(),
  })
  .meta({ title: 'Sluice configuration', description: 'Configuration file for the Sluice PostgreSQL session broker.' });

/** The validated config, defaults applied. After `loadConfig`, every file path in it is absolute. */
export type SluiceConfig = z.infer<typeof ConfigSchema>;
/** What a config file may contain (defaults optional). */
export type SluiceConfigInput = z.input<typeof ConfigSchema>;
export type ListenConfig = SluiceConfig['listen'];
export type LimitsConfig = SluiceConfig['limits'];
export type ListenerTlsConfig = NonNullable<SluiceConfig['tls']>;
export type TargetConfig = SluiceConfig['targets'][number];
export type TargetTlsConfig = TargetConfig['tls'];
export type TargetTlsMode = TargetTlsConfig['mode'];
export type PasswordSource = NonNullable<TargetConfig['password']>;
/** The policy section as written; absent means DEFAULT_POLICY (src/policy/model.ts): no rules, default deny. */
export type PolicyConfig = NonNullable<SluiceConfig['policy']>;
