import type Database from 'better-sqlite3';
import { CHAIN_TABLES, CHAINED_COLUMNS, chainHash, EMPTY_HEAD, hashedColumns, type ChainHead, type ChainTable, type ChainValue } from './chain.js';

/** chain_head is written this long after the last chained write (and at close), never in the hot transaction. */
export const HEAD_CHECKPOINT_MS = 200;

/**
 * Appends rows to the hash chain (see chain.ts). Every chained write happens inside `transact`, which takes the
 * write lock first (BEGIN IMMEDIATE), so the head cannot move under it before its commit.
 *
 * The head is kept in memory and loaded at open from the tables' last rows (within a table, id order is chain
 * order). When a transaction fails, the in-memory head goes back to the last committed one; SQLite rolled the
 * rows back, so the chain has no gap. `transact` checks PRAGMA data_version (no I/O) and reloads the head if
 * another connection committed since, so a second process appending (a CLI recording a policy version next to
 * `sluice serve`) cannot fork the chain.
 *
 * chain_head is a checkpoint of the head (seq + hash) that verify uses to notice a truncated tail. Writing it in
 * every hot-path commit costs one more page per commit (measured ~8 µs per commit, +60% at one record per
 * commit), so it is written in its own small transaction HEAD_CHECKPOINT_MS after chained writes, and at close.
 * Rows newer than the checkpoint are still chained; only their truncation goes unnoticed (as would a rewrite).
 *
 * Ids are part of the hash, so they are chosen here, not by SQLite after the insert: MAX(id)+1, read once and
 * then counted in memory while no other connection writes (re-read after a foreign write or a failure).
 */
export class ChainWriter {
  private headNow: ChainHead;
  private savedSeq = -1;
  private nextId: Partial<Record<ChainTable, number>> = {};
  private dataVersion = -1;
  /** Nesting of `transact` calls: only the outermost one syncs the head. */
  private depth = 0;
  private checkpointTimer: NodeJS.Timeout | null = null;
  private readonly inserts: Partial<Record<ChainTable, Database.Statement<unknown[]>>>;
  private readonly stamps: Record<ChainTable, Database.Statement<unknown[]>>;
  private readonly maxIds: Record<ChainTable, Database.Statement<[], number>>;
  private readonly lastRows: Record<ChainTable, Database.Statement<[], { id: number; seq: number | null; hash: Buffer | null }>>;
  private readonly dataVersionStmt: Database.Statement<[], number>;
  private readonly saveHead: Database.Statement<[number, string | null, number | null, Buffer, number]>;
  private readonly txn: Database.Transaction<(fn: () => unknown) => unknown>;

  constructor(private readonly db: Database.Database) {
    const each = <T>(f: (t: ChainTable) => T) => Object.fromEntries(CHAIN_TABLES.map((t) => [t, f(t)])) as Record<ChainTable, T>;
    // Prepared on first use: a migration that chains existing rows runs before later migrations add columns.
    this.inserts = {};
    this.stamps = each((t) => db.prepare(`UPDATE ${t} SET chain_seq = ?, prev_hash = ?, hash = ? WHERE id = ?`));
    this.maxIds = each((t) => db.prepare<[], number>(`SELECT COALESCE(MAX(id), 0) FROM ${t}`).pluck());
    this.lastRows = each((t) => db.prepare(`SELECT id, chain_seq AS seq, hash FROM ${t} ORDER BY id DESC LIMIT 1`));
    this.dataVersionStmt = db.prepare<[], number>('PRAGMA data_version').pluck();
    // Never moves the checkpoint back (another writer may have saved a later one).
    this.saveHead = db.prepare('UPDATE chain_head SET seq = ?, tbl = ?, row_id = ?, hash = ? WHERE id = 1 AND seq < ?');
    this.txn = db.transaction((fn: () => unknown) => {
      if (this.depth === 1) {
        const v = this.dataVersionStmt.get()!;
        if (v !== this.dataVersion) {
          this.headNow = this.loadHead();
          this.nextId = {};
          this.dataVersion = v;
        }
      }
      return fn();
    });
    this.headNow = this.loadHead();
  }

  /** The last record written (committed, unless called inside `transact`). */
  get head(): ChainHead {
    return this.headNow;
  }

  /**
   * Run `fn` in one write transaction (a savepoint when already inside one). On error the in-memory head is
   * rolled back to where it was and the error is rethrown.
   */
  transact<T>(fn: () => T): T {
    const before = this.headNow;
    this.depth++;
    try {
      const result = (this.db.inTransaction ? this.txn(fn) : this.txn.immediate(fn)) as T;
      if (this.headNow !== before) this.scheduleCheckpoint();
      return result;
    } catch (err) {
      this.headNow = before;
      this.nextId = {};
      throw err;
    } finally {
      this.depth--;
    }
  }

  /** Insert a chained row. `rest` (consumed) = the table's hashed columns after `id`, in CHAINED_COLUMNS order. */
  append(table: ChainTable, rest: ChainValue[]): number {
    this.assertInTransaction();
    const id = (this.nextId[table] ??= this.maxIds[table].get()! + 1);
    this.nextId[table] = id + 1;
    rest.unshift(id);
    const prev = this.headNow.hash;
    const hash = chainHash(prev, table, rest);
    const seq = this.headNow.seq + 1;
    rest.push(seq, prev, hash);
    (this.inserts[table] ??= this.prepareInsert(table)).run(rest);
    this.headNow = { seq, hash, table, rowId: id };
    return id;
  }

  private prepareInsert(t: ChainTable): Database.Statement<unknown[]> {
    const n = CHAINED_COLUMNS[t].length;
    return this.db.prepare(`INSERT INTO ${t} (${hashedColumns(t)}, chain_seq, prev_hash, hash) VALUES (${'?, '.repeat(n + 2)}?)`);
  }

  /** Chain a row that already exists (the migration that starts the chain). `values` include `id`. */
  stamp(table: ChainTable, values: ChainValue[]): void {
    this.assertInTransaction();
    const id = values[0] as number;
    const prev = this.headNow.hash;
    const hash = chainHash(prev, table, values);
    const seq = this.headNow.seq + 1;
    if (this.stamps[table].run(seq, prev, hash, id).changes !== 1) throw new Error(`${table} ${id} vanished while chaining it`);
    this.headNow = { seq, hash, table, rowId: id };
  }

  /**
   * Write the head to chain_head now (inside the caller's transaction if there is one, as in the migration).
   * Failures are left for the next checkpoint.
   */
  checkpoint(): void {
    if (this.checkpointTimer) clearTimeout(this.checkpointTimer);
    this.checkpointTimer = null;
    const h = this.headNow;
    if (h.seq === this.savedSeq || !this.db.open) return;
    try {
      this.saveHead.run(h.seq, h.table, h.rowId, h.hash, h.seq);
      this.savedSeq = h.seq;
    } catch {
      // disk full, locked: the rows are committed and chained; the checkpoint is retried after the next write
    }
  }

  /** Stop the checkpoint timer after writing the head (the caller keeps the Database open). */
  close(): void {
    this.checkpoint();
  }

  private scheduleCheckpoint(): void {
    if (this.depth > 1 || this.checkpointTimer) return;
    this.checkpointTimer = setTimeout(() => this.checkpoint(), HEAD_CHECKPOINT_MS);
    this.checkpointTimer.unref();
  }

  /** The chained row with the greatest chain_seq among the tables' last rows. */
  private loadHead(): ChainHead {
    let head = EMPTY_HEAD;
    for (const t of CHAIN_TABLES) {
      const r = this.lastRows[t].get();
      if (r && r.seq !== null && r.hash && r.seq > head.seq) head = { seq: r.seq, hash: r.hash, table: t, rowId: r.id };
    }
    return head;
  }

  private assertInTransaction(): void {
    if (!this.db.inTransaction) throw new Error('chained rows must be written inside ChainWriter.transact');
  }
}
