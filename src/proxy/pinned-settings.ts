import { readCString } from '../protocol/messages.js';

/**
 * Sluice reads statement bytes as UTF-8 with standard_conforming_strings on; the server must read them the same
 * way, or a statement could mean one thing to Sluice and another to PostgreSQL (with SJIS/BIG5/GBK, 0x5C can be
 * the second byte of a character). The server reports every change of these settings with ParameterStatus —
 * whether made at startup, by SET, set_config() or a function — so checking those reports catches all of them.
 * SQL_ASCII is accepted over a UTF8 database: the server then converts nothing and still validates input as UTF-8
 * (libpq asks for it under the C locale).
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-ASYNC
 */
export class PinnedSettings {
  private serverEncoding = 'UTF8';
  private clientEncoding = 'UTF8';

  /** Refusal reason for a ParameterStatus frame that breaks the pin, else null. */
  check(frame: Buffer): string | null {
    const name = readCString(frame, 5);
    const value = name && readCString(frame, name[1]);
    if (!name || !value) return 'malformed ParameterStatus from the server';
    const v = value[0].toUpperCase();
    switch (name[0]) {
      case 'server_encoding':
        this.serverEncoding = v;
        return this.encodingProblem();
      case 'client_encoding':
        this.clientEncoding = v;
        return this.encodingProblem();
      case 'standard_conforming_strings':
        return v === 'ON' ? null : 'standard_conforming_strings was turned off: Sluice requires it on';
      default:
        return null;
    }
  }

  // The server reports client_encoding before server_encoding at startup, so both orders are checked.
  private encodingProblem(): string | null {
    if (this.clientEncoding === 'UTF8') return null;
    if (this.clientEncoding === 'SQL_ASCII' && this.serverEncoding === 'UTF8') return null;
    return `client_encoding ${this.clientEncoding} over a ${this.serverEncoding} database: Sluice reads statements as UTF-8 only`;
  }
}
