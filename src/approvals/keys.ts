import { createHash } from 'node:crypto';

/**
 * The two keys an approval is bound to.
 *
 * - bytesHash: approve-once covers exactly this statement text and these bind parameters. The encoding is
 *   length-prefixed and tells NULL from '' and from the text "NULL", so no two different (text, params) pairs can
 *   share an encoding.
 * - shapeKey: approve-for-session covers later statements of the same shape. The shape is the statement text
 *   itself, with its bind parameters free: an ORM or driver re-running `UPDATE orders SET ... WHERE id = $1` with
 *   other values matches, a statement with different inlined constants does not. Deliberately not libpg_query's
 *   fingerprint (src/sql/cache.ts says why it is unsafe as a security key); widening to literal-insensitive
 *   templates would need the lexer-built templates of the classification cache.
 */
export function bytesHash(text: string | Buffer, params: readonly (string | Buffer | null)[] | null): string {
  const h = createHash('sha256');
  const part = (tag: string, value: string | Buffer) => {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    const len = Buffer.alloc(4);
    len.writeUInt32BE(bytes.length);
    h.update(tag).update(len).update(bytes);
  };
  part('T', text);
  for (const p of params ?? []) {
    if (p === null) h.update('N');
    else part('P', p);
  }
  return h.digest('hex');
}

export function shapeKey(text: string): string {
  return createHash('sha256').update('sluice-shape-v1\0').update(text, 'utf8').digest('hex');
}
