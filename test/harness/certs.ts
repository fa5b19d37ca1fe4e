import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Certificates {
  /** PEM of the self-signed CA that signed the server certificate: give it to clients as `ca`. */
  caFile: string;
  certFile: string;
  /** Mode 0600: PostgreSQL refuses a key that group or others can read. */
  keyFile: string;
}

/**
 * A throwaway CA and a server certificate for `localhost` / 127.0.0.1, made with the openssl CLI in `dir`,
 * so clients can use verify-full (hostname checked) against a test server. EC P-256 keys: fast to generate.
 */
export async function makeCertificates(dir: string): Promise<Certificates> {
  const caKey = join(dir, 'ca.key');
  const caFile = join(dir, 'ca.crt');
  const keyFile = join(dir, 'server.key');
  const csrFile = join(dir, 'server.csr');
  const certFile = join(dir, 'server.crt');
  const extFile = join(dir, 'server.ext');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

  await run('openssl', [
    'req', '-x509', ...ec, '-keyout', caKey, '-out', caFile, '-days', '7', '-subj', '/CN=Sluice test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await run('openssl', ['req', ...ec, '-keyout', keyFile, '-out', csrFile, '-subj', '/CN=localhost']);
  // Clients check the SAN, not the CN; a server cert without serverAuth is refused by strict verifiers.
  await writeFile(
    extFile,
    [
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      '',
    ].join('\n'),
  );
  await run('openssl', [
    'x509', '-req', '-in', csrFile, '-CA', caFile, '-CAkey', caKey, '-set_serial', `0x${randomBytes(8).toString('hex')}`,
    '-days', '7', '-sha256', '-extfile', extFile, '-out', certFile,
  ]);
  await chmod(caKey, 0o600);
  await chmod(keyFile, 0o600);
  return { caFile, certFile, keyFile };
}
