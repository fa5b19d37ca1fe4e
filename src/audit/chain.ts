import { createHash, hash as oneShotHash } from 'node:crypto';
import type Database from 'better-sqlite3';

/**
 * The audit hash chain: ONE chain over every audited row, in commit order, across the chained tables.
 *
 *   hash(n) = SHA-256( prev_hash(n) || encode(table, row n) ),   prev_hash(n) = hash(n-1),   prev_hash(1) = 32 zero bytes
 *
 * encode() is defined here, byte for byte, and is frozen: changing it breaks verification of every stored row
 * (a new encoding needs a new DOMAIN and a verifier that knows both). It never serializes objects: JSON columns
 * are hashed as the exact text stored in the column, so key order in a JS object cannot make a hash drift.
 *
 *   encode(table, row) = text(DOMAIN) || text(table) || value(col_1) || ... || value(col_k)
 *   columns: CHAINED_COLUMNS[table], in that order (`id` included, so a row cannot be moved to another id)
 *   value:   NULL          -> 0x00
 *            integer       -> 0x01 || int64 big-endian          (INTEGER columns holding a safe integer)
 *            real          -> 0x02 || float64 big-endian        (REAL columns, or a non-integer in an INTEGER column)
 *            text          -> 0x03 || uint32 BE byte length || UTF-8 bytes
 *            blob          -> 0x04 || uint32 BE byte length || bytes
 *
 * `chain_seq` (1, 2, 3... over all chained tables) is NOT hashed: it only says where to look next. The order is
 * bound by prev_hash, so renumbering chain_seq cannot reorder anything undetected (verify reports 'reordered').
 * `chain_head` (one row) holds the last seq and hash, updated in the same transaction as the rows; it is how
 * the writer finds the head at open and how verify notices a truncated tail.
 *
 * Sessions rows are not chained (they are updated when a session ends); their opening and ending are chained
 * as audit_events ('session_opened' / 'session_ended') and verify checks the sessions rows against them.
 * Policy texts (policy_versions) are bound the same way, by the SHA-256 in their 'policy_applied' event.
 */
export const DOMAIN = 'sluice-audit-chain-v1';
export const HASH_BYTES = 32;
export const GENESIS: Buffer = Buffer.alloc(HASH_BYTES);

export const CHAINED_COLUMNS = {
  statements: [
    ['id', 'int'], ['session_id', 'int'], ['seq', 'int'], ['received_at', 'int'], ['protocol', 'text'], ['name', 'text'],
    ['text', 'text'], ['classes', 'text'], ['objects', 'text'], ['decision', 'text'], ['rule', 'text'], ['reason', 'text'],
    ['params', 'text'], ['tags', 'text'],
  ],
  statement_results: [
    ['id', 'int'], ['statement_id', 'int'], ['completed_at', 'int'], ['duration_ms', 'real'], ['rows', 'int'],
    ['bytes', 'int'], ['error_code', 'text'], ['error_message', 'text'],
    // Added by migration 4. Optional columns come last and a NULL adds nothing to the encoding, so rows written
    // before the column existed keep their hashes.
    ['masked_fields', 'int', 'optional'],
  ],
  audit_events: [['id', 'int'], ['kind', 'text'], ['session_id', 'int'], ['at', 'int'], ['detail', 'text']],
} as const satisfies Record<string, readonly (readonly [string, 'int' | 'real' | 'text', 'optional'?])[]>;

export type ChainTable = keyof typeof CHAINED_COLUMNS;
export const CHAIN_TABLES = Object.keys(CHAINED_COLUMNS) as ChainTable[];

/** A column value as better-sqlite3 returns it (without safeIntegers). */
export type ChainValue = number | string | Buffer | null;

/** The last record of the chain (seq 0 and GENESIS for an empty chain). */
export interface ChainHead {
  seq: number;
  hash: Buffer;
  table: ChainTable | null;
  rowId: number | null;
}

export const EMPTY_HEAD: ChainHead = { seq: 0, hash: GENESIS, table: null, rowId: null };

const TWO_32 = 4294967296;
let scratch = Buffer.allocUnsafe(16 * 1024);

/** SHA-256(prev || encode(table, values)); `values` in CHAINED_COLUMNS[table] order. */
export function chainHash(prev: Buffer, table: ChainTable, values: readonly ChainValue[]): Buffer {
  const cols = CHAINED_COLUMNS[table];
  if (values.length !== cols.length) throw new Error(`chainHash(${table}): expected ${cols.length} values, got ${values.length}`);
  // Upper bound: a UTF-16 code unit never takes more than 3 UTF-8 bytes.
  let need = HASH_BYTES + 5 + DOMAIN.length + 5 + table.length * 3;
  for (const v of values) need += typeof v === 'string' ? 5 + v.length * 3 : v instanceof Buffer ? 5 + v.length : 9;
  if (need > scratch.length) scratch = Buffer.allocUnsafe(Math.max(need, scratch.length * 2));
  const buf = scratch;
  buf.set(prev, 0);
  let off = writeText(buf, HASH_BYTES, DOMAIN);
  off = writeText(buf, off, table);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if ((v === null || v === undefined) && (cols[i] as readonly string[])[2] === 'optional') continue;
    if (v === null || v === undefined) {
      buf[off++] = 0x00;
    } else if (typeof v === 'string') {
      off = writeText(buf, off, v);
    } else if (typeof v === 'number') {
      if (cols[i]![1] === 'int' && Number.isSafeInteger(v)) {
        buf[off] = 0x01;
        const hi = Math.floor(v / TWO_32);
        buf.writeInt32BE(hi, off + 1);
        buf.writeUInt32BE(v - hi * TWO_32, off + 5);
      } else {
        buf[off] = 0x02;
        buf.writeDoubleBE(v, off + 1);
      }
      off += 9;
    } else if (v instanceof Buffer) {
      buf[off] = 0x04;
      buf.writeUInt32BE(v.length, off + 1);
      buf.set(v, off + 5);
      off += 5 + v.length;
    } else {
      throw new Error(`chainHash(${table}): unsupported value of type ${typeof v} in ${cols[i]![0]}`);
    }
  }
  // crypto.hash (one-shot) is ~0.4 µs cheaper than createHash().update().digest() for a row this size.
  return oneShotHash('sha256', buf.subarray(0, off), 'buffer');
}

function writeText(buf: Buffer, off: number, s: string): number {
  buf[off] = 0x03;
  const n = buf.write(s, off + 5, 'utf8');
  buf.writeUInt32BE(n, off + 1);
  return off + 5 + n;
}

/** The head recorded in chain_head (EMPTY_HEAD when the store has no chained rows yet). */
export function readHead(db: Database.Database): ChainHead {
  const row = db.prepare('SELECT seq, tbl, row_id AS rowId, hash FROM chain_head WHERE id = 1').get() as
    | { seq: number; tbl: ChainTable | null; rowId: number | null; hash: Buffer }
    | undefined;
  if (!row) return EMPTY_HEAD;
  return { seq: row.seq, hash: row.hash, table: row.tbl, rowId: row.rowId };
}

/** SELECT list of a chained table's hashed columns, in encoding order. */
export function hashedColumns(table: ChainTable): string {
  return CHAINED_COLUMNS[table].map(([c]) => c).join(', ');
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
