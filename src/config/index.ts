export { ConfigError, formatKeyPath, loadConfig, parseConfig, resolveTargetPassword, TargetPasswordError } from './load.js';
export type { ConfigProblem } from './load.js';
export { ConfigSchema, TARGET_NAME_PATTERN, TLS_MODES } from './model.js';
export type {
  LimitsConfig,
  ListenConfig,
  ListenerTlsConfig,
  PasswordSource,
  SluiceConfig,
  SluiceConfigInput,
  TargetConfig,
  TargetTlsConfig,
  TargetTlsMode,
} from './model.js';
export { configJsonSchema, configJsonSchemaText } from './schema.js';
