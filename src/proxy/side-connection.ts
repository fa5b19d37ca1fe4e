/**
 * A side connection: Sluice's own session to a target, used for catalog lookups (masking) and EXPLAIN
 * estimates (approvals). It never carries client traffic. The implementation lives beside this interface.
 */

export interface SideResult {
  fields: { name: string; typeOid: number }[];
  /** Text-format values; NULL is null. */
  rows: (string | null)[][];
  /** The CommandComplete tag, e.g. "SELECT 3". */
  command: string;
}

export interface SideConnection {
  /** Runs one statement (extended protocol when params are given, text format); rejects with the server's error. */
  query(sql: string, params?: (string | null)[]): Promise<SideResult>;
  close(): void;
}
