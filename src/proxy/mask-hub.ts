/**
 * Catalog and masking state shared by the sessions of one broker: a catalog cache per target (opened on first use,
 * reloaded on a timer and after DDL; policy resolves unqualified names with it too, names.ts), the per-install key
 * of the hash method, and the masking section in force (a config edit applies to the next statement of every
 * session, like the policy).
 */
import { bindMasking, CatalogCache, loadOrCreateMaskKey, type BoundMasking, type Masking } from '../masking/index.js';
import type { SideConnection } from './side-connection.js';
import type { SessionInfo } from './context.js';
import type { SearchPathTracker } from './mask-path.js';
import { MaskSession } from './mask-session.js';
import { SessionNames, TargetNames } from './names.js';
import type { UpstreamTarget } from './upstream.js';

export interface MaskHubOptions {
  dataDir: string;
  /** The masking section in force now. */
  masking(): Masking | undefined;
  /** A new side connection to a target, for catalog loads. */
  openSide(target: string): Promise<SideConnection>;
  log(level: 'info' | 'warn' | 'error', msg: string): void;
}

const DEFAULT_REFRESH_MS = 60_000;

export class MaskHub {
  private readonly caches = new Map<string, CatalogCache>();
  private readonly targets = new Map<string, TargetNames>();
  private key: Buffer | null = null;
  private closed = false;

  constructor(private readonly opts: MaskHubOptions) {}

  /** How one new session's unqualified relation names resolve (names.ts); the catalog loads on first use. */
  names(info: SessionInfo, target: UpstreamTarget): SessionNames {
    let t = this.targets.get(target.name);
    if (!t) {
      t = new TargetNames(this.cache(target.name));
      this.targets.set(target.name, t);
    }
    return new SessionNames(t, target.user, info.startupSearchPath ?? null);
  }

  /** The masking of one new session: rules bound to who is connected, rebound when the config changes. */
  session(info: SessionInfo, target: UpstreamTarget, path: SearchPathTracker): MaskSession {
    const subject = { identity: info.identity, target: info.target };
    let section = this.opts.masking();
    let bound: BoundMasking = bindMasking(section, subject);
    return new MaskSession({
      bound: () => {
        const now = this.opts.masking();
        if (now !== section) {
          section = now;
          bound = bindMasking(now, subject);
        }
        return bound;
      },
      cache: () => this.cache(target.name),
      key: () => this.maskKey(),
      targetUser: target.user,
      path,
    });
  }

  private cache(target: string): CatalogCache {
    let c = this.caches.get(target);
    if (!c) {
      if (this.closed) throw new Error('Sluice is shutting down');
      c = new CatalogCache({
        connect: () => this.opts.openSide(target),
        refreshMs: this.opts.masking()?.catalogRefreshMs ?? DEFAULT_REFRESH_MS,
        log: this.opts.log,
      });
      c.start();
      this.caches.set(target, c);
    }
    return c;
  }

  /** Read (or created) on first use: a broker without masking never touches the key file. */
  private maskKey(): Buffer {
    this.key ??= loadOrCreateMaskKey(this.opts.dataDir);
    return this.key;
  }

  close(): void {
    this.closed = true;
    for (const c of this.caches.values()) c.close();
    this.caches.clear();
    this.targets.clear();
  }
}
