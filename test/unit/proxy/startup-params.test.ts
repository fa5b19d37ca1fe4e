import { describe, expect, it } from 'vitest';
import { vetStartupParams } from '../../../src/proxy/startup-params.js';

const vet = (o: Record<string, string>) => vetStartupParams(new Map(Object.entries(o)));

describe('vetStartupParams', () => {
  it('passes allow-listed settings, drops user/database, and pins encoding and string syntax upstream', () => {
    const r = vet({
      user: 'agent', database: 'app', application_name: 'psql', DateStyle: 'ISO, MDY', TimeZone: 'UTC',
      extra_float_digits: '3', IntervalStyle: 'iso_8601', search_path: 'public', statement_timeout: '5s',
      lock_timeout: '1s', idle_in_transaction_session_timeout: '10s', client_encoding: 'UTF8',
    });
    expect(r).toEqual({
      ok: true,
      applicationName: 'psql',
      unsupportedProtocolOptions: [],
      upstream: {
        application_name: 'psql', DateStyle: 'ISO, MDY', TimeZone: 'UTC', extra_float_digits: '3',
        IntervalStyle: 'iso_8601', search_path: 'public', statement_timeout: '5s', lock_timeout: '1s',
        idle_in_transaction_session_timeout: '10s', client_encoding: 'UTF8', standard_conforming_strings: 'on',
      },
    });
  });

  it('pins client_encoding and standard_conforming_strings even when the client sends neither', () => {
    expect(vet({ user: 'a' })).toEqual({
      ok: true, applicationName: null, unsupportedProtocolOptions: [],
      upstream: { client_encoding: 'UTF8', standard_conforming_strings: 'on' },
    });
  });

  it('accepts the spellings of UTF-8 that clients send', () => {
    for (const v of ['UTF8', 'utf8', 'UTF-8', 'unicode']) {
      expect(vet({ user: 'a', client_encoding: v })).toMatchObject({ ok: true, upstream: { client_encoding: 'UTF8' } });
    }
  });

  it('passes SQL_ASCII as asked (libpq under the C locale); the reports of the server are checked later', () => {
    expect(vet({ user: 'a', client_encoding: 'SQL_ASCII' })).toMatchObject({ ok: true, upstream: { client_encoding: 'SQL_ASCII' } });
  });

  it('refuses another client_encoding with 22023', () => {
    for (const v of ['LATIN1', 'SJIS', 'BIG5', 'GBK', 'WIN1252', '']) {
      expect(vet({ user: 'a', client_encoding: v })).toMatchObject({ ok: false, code: '22023', message: expect.stringContaining(v) });
    }
  });

  it('refuses standard_conforming_strings=off with 22023 and accepts on', () => {
    expect(vet({ user: 'a', standard_conforming_strings: 'off' })).toMatchObject({ ok: false, code: '22023' });
    expect(vet({ user: 'a', standard_conforming_strings: 'on' })).toMatchObject({ ok: true });
  });

  it('refuses options, replication and any other parameter with 0A000 and a hint', () => {
    for (const [k, v] of [['options', '-c role=x'], ['replication', 'database'], ['replication', 'true'],
      ['session_authorization', 'postgres'], ['role', 'postgres'], ['default_transaction_read_only', 'off'],
      ['backslash_quote', 'on'], ['escape_string_warning', 'off']] as const) {
      const r = vet({ user: 'a', [k]: v });
      expect(r).toMatchObject({ ok: false, code: '0A000', message: expect.stringContaining(`"${k}"`), hint: expect.stringMatching(/Allowed/) });
    }
  });

  it('refuses even an empty options string (fail closed)', () => {
    expect(vet({ user: 'a', options: '' })).toMatchObject({ ok: false, code: '0A000' });
  });

  it('collects _pq_. protocol options for NegotiateProtocolVersion instead of forwarding them', () => {
    const r = vet({ user: 'a', '_pq_.foo': 'x', '_pq_.bar': 'y' });
    expect(r).toMatchObject({ ok: true, unsupportedProtocolOptions: ['_pq_.foo', '_pq_.bar'] });
    expect(r.ok && Object.keys(r.upstream)).not.toContain('_pq_.foo');
  });

  // Setting names are case-insensitive in PostgreSQL, and libpq sends PGDATESTYLE / PGTZ from the environment
  // as lower-case `datestyle` / `timezone` startup parameters (fe-connect.c EnvironmentOptions; verified by
  // capturing psql 15's startup packet). These are allow-listed settings, so `PGTZ=UTC psql ...` must work.
  it('accepts allow-listed settings in any case (libpq sends datestyle, timezone; pgjdbc DateStyle)', () => {
    expect(vet({ user: 'a', datestyle: 'ISO, MDY', timezone: 'UTC' })).toMatchObject({ ok: true, upstream: { datestyle: 'ISO, MDY', timezone: 'UTC' } });
    expect(vet({ user: 'a', DATESTYLE: 'ISO', TimeZone: 'UTC', intervalstyle: 'postgres' })).toMatchObject({ ok: true });
  });

  it('applies the refusals in any case too (no bypass by spelling)', () => {
    for (const k of ['Options', 'OPTIONS', 'Replication', 'Session_Authorization']) {
      expect(vet({ user: 'a', [k]: 'x' })).toMatchObject({ ok: false, code: '0A000' });
    }
    expect(vet({ user: 'a', Client_Encoding: 'LATIN1' })).toMatchObject({ ok: false, code: '22023' });
    expect(vet({ user: 'a', STANDARD_CONFORMING_STRINGS: 'off' })).toMatchObject({ ok: false, code: '22023' });
    // An accepted client_encoding in another case is pinned, never forwarded under the client's spelling.
    const r = vet({ user: 'a', CLIENT_ENCODING: 'utf8' });
    expect(r.ok && Object.keys(r.upstream).filter((k) => k.toLowerCase() === 'client_encoding')).toEqual(['client_encoding']);
  });
});
