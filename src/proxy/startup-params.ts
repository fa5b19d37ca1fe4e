/**
 * Which client startup parameters reach the server. Startup parameters set server settings before the first
 * statement is ever seen, so only a known-harmless list passes; everything else is refused, never dropped
 * silently (fail closed). `options` can set any setting and `replication` opens a different protocol.
 */
const PASSED = new Set([
  'application_name', 'datestyle', 'timezone', 'extra_float_digits', 'intervalstyle', 'search_path',
  'statement_timeout', 'lock_timeout', 'idle_in_transaction_session_timeout',
]);

/**
 * Encodings a client may ask for. Sluice pins UTF8 upstream so its parse of a statement equals the server's;
 * SQL_ASCII passes as asked (libpq sends it under the C locale) and PinnedSettings accepts it only over UTF8 data.
 */
const UTF8_NAMES = new Set(['utf8', 'utf-8', 'unicode']);

export type StartupParamsResult =
  | { ok: true; upstream: Record<string, string>; applicationName: string | null; unsupportedProtocolOptions: string[] }
  | { ok: false; code: string; message: string; hint: string };

export function vetStartupParams(params: Map<string, string>): StartupParamsResult {
  const upstream: Record<string, string> = {};
  let clientEncoding = 'UTF8';
  let applicationName: string | null = null;
  const unsupportedProtocolOptions: string[] = [];
  for (const [k, v] of params) {
    if (k === 'user' || k === 'database') continue;
    // Setting names are case-insensitive in PostgreSQL (libpq sends `datestyle`, pgjdbc `DateStyle`).
    const name = k.toLowerCase();
    if (k.startsWith('_pq_.')) { unsupportedProtocolOptions.push(k); continue; }
    if (name === 'client_encoding') {
      if (v.toLowerCase() === 'sql_ascii') { clientEncoding = 'SQL_ASCII'; continue; }
      if (!UTF8_NAMES.has(v.toLowerCase())) {
        return refuse('22023', `client_encoding "${v}" is not supported by Sluice`, 'Connect with client_encoding=UTF8 (e.g. PGCLIENTENCODING=UTF8).');
      }
      continue;
    }
    if (name === 'standard_conforming_strings') {
      if (v.toLowerCase() !== 'on') return refuse('22023', 'standard_conforming_strings must stay on through Sluice', 'Remove standard_conforming_strings from the connection parameters.');
      continue;
    }
    if (name === 'replication' || name === 'options' || !PASSED.has(name)) {
      return refuse('0A000', `startup parameter "${k}" is not allowed through Sluice`,
        `Remove it from the connection string. Allowed: ${[...PASSED].join(', ')}, client_encoding (UTF8).`);
    }
    upstream[k] = v;
    if (name === 'application_name') applicationName = v;
  }
  // Pinned so the bytes the proxy parses mean what the server will parse.
  upstream.client_encoding = clientEncoding;
  upstream.standard_conforming_strings = 'on';
  return { ok: true, upstream, applicationName, unsupportedProtocolOptions };
}

function refuse(code: string, message: string, hint: string): StartupParamsResult {
  return { ok: false, code, message, hint };
}
