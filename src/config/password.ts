/**
 * Reads a target's real database password at connect time, from the environment or a file. Secrets are
 * never part of the config object and never appear in an error message.
 */
import { readFileSync } from 'node:fs';
import type { TargetConfig } from './model.js';

export class TargetPasswordError extends Error {
  override readonly name = 'TargetPasswordError';
  constructor(
    readonly target: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The password for `target`, or undefined when it has none (trust/peer auth upstream).
 * Files lose one trailing newline (`echo secret > file` adds it). Throws `TargetPasswordError` naming
 * the target and the variable or file when the secret is missing or empty.
 */
export function resolveTargetPassword(
  target: Pick<TargetConfig, 'name' | 'password'>,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const source = target.password;
  if (source === undefined) return undefined;

  if ('env' in source) {
    const value = env[source.env];
    if (value === undefined) {
      throw new TargetPasswordError(
        target.name,
        `target "${target.name}": environment variable ${source.env} is not set (it holds the target's password)`,
      );
    }
    if (value === '') {
      throw new TargetPasswordError(target.name, `target "${target.name}": environment variable ${source.env} is empty`);
    }
    return value;
  }

  let text: string;
  try {
    text = readFileSync(source.file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown error';
    throw new TargetPasswordError(target.name, `target "${target.name}": cannot read password file ${source.file} (${code})`);
  }
  const value = text.endsWith('\r\n') ? text.slice(0, -2) : text.endsWith('\n') ? text.slice(0, -1) : text;
  if (value === '') {
    throw new TargetPasswordError(target.name, `target "${target.name}": password file ${source.file} is empty`);
  }
  return value;
}
