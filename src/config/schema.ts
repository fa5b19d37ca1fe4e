/**
 * JSON Schema for the config file, generated from the zod model. It describes what may be written
 * (the input side: keys with defaults are optional). `scripts/gen-config-schema.ts` ships it as
 * schema/sluice-config.schema.json; a unit test keeps the two equal.
 */
import { z } from 'zod';
import { ConfigSchema } from './model.js';

export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(ConfigSchema, { io: 'input', target: 'draft-2020-12', unrepresentable: 'throw' });
}

/** The exact text of the shipped schema file. */
export function configJsonSchemaText(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}
