import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

/**
 * Client side of SCRAM-SHA-256 (RFC 5802 / RFC 7677) as PostgreSQL uses it, without channel binding.
 * Written here because node-postgres keeps its SCRAM code internal (not a public API) and the proxy
 * speaks to the server with its own framer. https://www.postgresql.org/docs/current/sasl-authentication.html
 */
export class ScramClient {
  private readonly clientNonce = randomBytes(18).toString('base64');
  private clientFirstBare = '';
  private expectedServerSignature: Buffer | null = null;

  constructor(private readonly password: string) {}

  /** SASLInitialResponse body: mechanism, int32 length, client-first-message. */
  initialResponse(): Buffer {
    // PostgreSQL ignores the SCRAM user name (it uses the startup user), so it is sent empty.
    this.clientFirstBare = `n=,r=${this.clientNonce}`;
    const first = Buffer.from(`n,,${this.clientFirstBare}`, 'utf8');
    const mech = Buffer.from('SCRAM-SHA-256\0', 'utf8');
    const len = Buffer.alloc(4);
    len.writeInt32BE(first.length);
    return Buffer.concat([mech, len, first]);
  }

  /** SASLResponse body (client-final-message) for the server-first-message. */
  async continue(serverFirst: string): Promise<Buffer> {
    const attrs = parseAttributes(serverFirst);
    const nonce = attrs.get('r');
    const salt = attrs.get('s');
    const iterations = Number(attrs.get('i'));
    if (!nonce || !nonce.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length) {
      throw new Error('SCRAM: server nonce does not extend the client nonce');
    }
    if (!salt) throw new Error('SCRAM: server sent no salt');
    if (!Number.isInteger(iterations) || iterations < 1 || iterations > 10_000_000) {
      throw new Error('SCRAM: bad iteration count');
    }
    const saltedPassword = await saltedPasswordFor(this.password.normalize('NFKC'), salt, iterations);
    const clientKey = hmac(saltedPassword, 'Client Key');
    const storedKey = createHash('sha256').update(clientKey).digest();
    const clientFinalNoProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${clientFinalNoProof}`;
    const clientSignature = hmac(storedKey, authMessage);
    const proof = Buffer.alloc(clientKey.length);
    for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ clientSignature[i]!;
    const serverKey = hmac(saltedPassword, 'Server Key');
    this.expectedServerSignature = hmac(serverKey, authMessage);
    return Buffer.from(`${clientFinalNoProof},p=${proof.toString('base64')}`, 'utf8');
  }

  /** Checks the server-final-message: the server must prove it knows the password too. */
  finish(serverFinal: string): void {
    const v = parseAttributes(serverFinal).get('v');
    if (!v || !this.expectedServerSignature) throw new Error('SCRAM: server sent no signature');
    const got = Buffer.from(v, 'base64');
    if (got.length !== this.expectedServerSignature.length || !timingSafeEqual(got, this.expectedServerSignature)) {
      throw new Error('SCRAM: server signature does not match');
    }
  }
}

function hmac(key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function parseAttributes(msg: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of msg.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out.set(part[0]!, part.slice(2));
  }
  return out;
}

/** md5 password response: 'md5' + md5(md5(password + user) + salt). */
export function md5PasswordResponse(user: string, password: string, salt: Buffer): string {
  const inner = createHash('md5').update(password + user).digest('hex');
  return 'md5' + createHash('md5').update(Buffer.concat([Buffer.from(inner), salt])).digest('hex');
}

/**
 * SCRAM's SaltedPassword (PBKDF2, 4096 rounds by default) depends only on the password, the role's salt and the
 * iteration count, all fixed per target: computing it once per target instead of once per upstream connection saves
 * a few ms of CPU per connection and keeps a connection storm from queueing behind itself on libuv's thread pool
 * (PgBouncer keeps the derived keys for the same reason). It is password-equivalent, like the password Sluice
 * already holds in memory. Concurrent first uses share one computation.
 */
const salted = new Map<string, Promise<Buffer>>();
const SALTED_MAX = 64;

export function saltedPasswordFor(password: string, salt: string, iterations: number): Promise<Buffer> {
  const key = `${createHash('sha256').update(password).digest('hex')}:${salt}:${iterations}`;
  let p = salted.get(key);
  if (!p) {
    p = pbkdf2Async(password, Buffer.from(salt, 'base64'), iterations, 32, 'sha256');
    p.catch(() => salted.delete(key));
    if (salted.size >= SALTED_MAX) salted.delete(salted.keys().next().value!);
    salted.set(key, p);
  }
  return p;
}
