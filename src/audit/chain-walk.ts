import type Database from 'better-sqlite3';
import { CHAIN_TABLES, hashedColumns, type ChainTable, type ChainValue } from './chain.js';

/** One chained row as stored. `values` are the hashed columns in encoding order (values[0] is the id). */
export interface ChainedRow {
  table: ChainTable;
  id: number;
  seq: number | null;
  prev: unknown;
  hash: unknown;
  values: ChainValue[];
}

/**
 * Every chained row, in chain order, streamed: each table is read in id order (its own rowid b-tree, no
 * index needed; within a table the writer allocates ids in chain order) and the tables are merged on
 * chain_seq. Rows without a chain_seq come first (the writer never leaves one, so they were put there).
 * `passed(table, id)` tells rows already returned by next() from rows still ahead.
 */
export class ChainWalk {
  private readonly cursors: { table: ChainTable; it: Iterator<unknown[]>; head: ChainedRow | null }[];
  private readonly returned = new Map<ChainTable, number>();
  private peeked: ChainedRow | null | undefined;

  constructor(db: Database.Database, tables: readonly ChainTable[] = CHAIN_TABLES) {
    this.cursors = tables.map((table) => {
      const it = db.prepare(`SELECT ${hashedColumns(table)}, chain_seq, prev_hash, hash FROM ${table} ORDER BY id`).raw().iterate() as Iterator<unknown[]>;
      const c = { table, it, head: null as ChainedRow | null };
      this.advance(c);
      return c;
    });
  }

  peek(): ChainedRow | null {
    if (this.peeked === undefined) this.peeked = this.take();
    return this.peeked;
  }

  next(): ChainedRow | null {
    const r = this.peek();
    this.peeked = undefined;
    if (r) this.returned.set(r.table, r.id);
    return r;
  }

  /** Whether next() already returned the row `id` of `table` (each table is read in ascending id order). */
  passed(table: ChainTable, id: number): boolean {
    return id <= (this.returned.get(table) ?? 0);
  }

  /** Stop early (closes the statements' iterators so the connection can be used for writes again). */
  close(): void {
    for (const c of this.cursors) c.it.return?.();
  }

  private take(): ChainedRow | null {
    let best: (typeof this.cursors)[number] | null = null;
    for (const c of this.cursors) {
      if (!c.head) continue;
      if (!best || rank(c.head.seq) < rank(best.head!.seq)) best = c;
    }
    if (!best) return null;
    const row = best.head!;
    this.advance(best);
    return row;
  }

  private advance(c: (typeof this.cursors)[number]): void {
    const n = c.it.next();
    if (n.done) {
      c.head = null;
      return;
    }
    const raw = n.value;
    const values = raw.slice(0, raw.length - 3) as ChainValue[];
    const [seq, prev, hash] = raw.slice(raw.length - 3);
    const id = values[0] as number;
    c.head = { table: c.table, id, seq: typeof seq === 'number' ? seq : null, prev, hash, values };
  }
}

const rank = (seq: number | null): number => (seq === null ? -Infinity : seq);
