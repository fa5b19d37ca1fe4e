import { describe, expect, it } from 'vitest';
import { PinnedSettings } from '../../../src/proxy/pinned-settings.js';

function status(name: string, value: string): Buffer {
  const body = Buffer.from(`${name}\0${value}\0`, 'utf8');
  const head = Buffer.alloc(5);
  head[0] = 0x53;
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

describe('PinnedSettings', () => {
  it('accepts UTF8 and the settings it does not pin', () => {
    const p = new PinnedSettings();
    expect(p.check(status('client_encoding', 'UTF8'))).toBeNull();
    expect(p.check(status('server_encoding', 'UTF8'))).toBeNull();
    expect(p.check(status('standard_conforming_strings', 'on'))).toBeNull();
    expect(p.check(status('TimeZone', 'Europe/Paris'))).toBeNull();
  });

  it('refuses a client_encoding other than UTF8 (SET client_encoding, set_config)', () => {
    for (const enc of ['LATIN1', 'SJIS', 'BIG5', 'GBK']) {
      expect(new PinnedSettings().check(status('client_encoding', enc))).toContain(`client_encoding ${enc}`);
    }
  });

  it('accepts SQL_ASCII over a UTF8 database only, whichever the server reports first', () => {
    const ok = new PinnedSettings();
    expect(ok.check(status('client_encoding', 'SQL_ASCII'))).toBeNull();
    expect(ok.check(status('server_encoding', 'UTF8'))).toBeNull();
    const bad = new PinnedSettings();
    expect(bad.check(status('client_encoding', 'SQL_ASCII'))).toBeNull();
    expect(bad.check(status('server_encoding', 'LATIN1'))).toContain('over a LATIN1 database');
  });

  it('refuses standard_conforming_strings off and a malformed report', () => {
    expect(new PinnedSettings().check(status('standard_conforming_strings', 'off'))).toContain('standard_conforming_strings');
    expect(new PinnedSettings().check(Buffer.from([0x53, 0, 0, 0, 6, 0x61]))).toContain('malformed');
  });
});
