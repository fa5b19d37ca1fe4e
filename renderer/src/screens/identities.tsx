import { useState } from 'react';
import { ago, dateTime } from '../format.js';
import { useClient, useLoad } from '../state/console-context.js';

/** Seen, but not for this long: flagged for the access review. */
const STALE_DAYS = 30;

export function IdentitiesScreen() {
  const client = useClient();
  const keys = useLoad(() => client.listKeys({}), [client]);
  const ids = useLoad(() => client.listIdentities({}), [client]);
  const review = useLoad(() => client.accessReview({ unusedDays: STALE_DAYS }), [client]);
  const [form, setForm] = useState({ name: '', groups: '', days: '' });
  const [secret, setSecret] = useState<{ name: string; secret: string } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const stale = (t: number | null) => t === null || Date.now() - t > STALE_DAYS * 86_400_000;

  const add = async () => {
    setError(null);
    try {
      const days = Number(form.days);
      const r = await client.addKey({
        name: form.name.trim(),
        groups: form.groups.split(',').map((g) => g.trim()).filter(Boolean),
        ...(form.days && days > 0 ? { expiresAt: Date.now() + days * 86_400_000 } : {}),
      });
      setSecret({ name: r.name, secret: r.secret });
      setForm({ name: '', groups: '', days: '' });
      keys.reload();
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const revoke = async (name: string) => {
    if (!window.confirm(`Revoke the key of "${name}"? New connections with it fail at once.`)) return;
    await client.revokeKey({ name });
    keys.reload();
  };

  return (
    <section className="identities">
      <h2>Agent keys</h2>
      <form className="inline-form" onSubmit={(e) => { e.preventDefault(); void add(); }}>
        <input placeholder="name (the PostgreSQL user)" value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} aria-label="key name" />
        <input placeholder="groups, comma separated" value={form.groups} onChange={(e) => setForm({ ...form, groups: e.target.value })} aria-label="groups" />
        <input placeholder="expires in days (empty: never)" value={form.days} onChange={(e) => setForm({ ...form, days: e.target.value })} aria-label="expiry days" />
        <button type="submit" disabled={!form.name.trim()}>Create key</button>
      </form>
      {error && <p className="error">{error}</p>}
      {secret && (
        <div className="secret" data-testid="secret">
          <p>The secret of <strong>{secret.name}</strong> is shown this once; Sluice keeps only a salted hash. Give it to the agent as its password:</p>
          <pre>{secret.secret}</pre>
          <button onClick={() => setSecret(null)}>I have stored it</button>
        </div>
      )}
      <table>
        <thead><tr><th>name</th><th>status</th><th>groups</th><th>created</th><th>expires</th><th>last used</th><th /></tr></thead>
        <tbody>
          {keys.data?.map((k) => (
            <tr key={`${k.name}-${k.createdAt}`} className={k.status !== 'active' ? 'dim' : ''}>
              <td>{k.name}</td><td>{k.status}</td><td>{k.groups.join(', ')}</td><td>{dateTime(k.createdAt)}</td><td>{dateTime(k.expiresAt)}</td>
              <td>{ago(k.lastUsedAt)}{k.status === 'active' && stale(k.lastUsedAt ?? k.createdAt) ? <b className="stale"> stale</b> : null}</td>
              <td>{k.status === 'active' && <button onClick={() => void revoke(k.name)}>Revoke</button>}</td>
            </tr>
          ))}
        </tbody>
      </table>

      <h2>Identities seen</h2>
      <table>
        <thead><tr><th>name</th><th>kind</th><th>issuer</th><th>subject</th><th>groups</th><th>first seen</th><th>last seen</th></tr></thead>
        <tbody>
          {ids.data?.length === 0 && <tr><td colSpan={7} className="muted">No identity has logged in yet.</td></tr>}
          {ids.data?.map((i) => (
            <tr key={`${i.kind}-${i.issuer}-${i.name}`}>
              <td>{i.name}</td><td>{i.kind}</td><td>{i.issuer ?? '—'}</td><td>{i.subject ?? '—'}</td><td>{i.groups.join(', ')}</td>
              <td>{dateTime(i.firstSeen)}</td><td>{ago(i.lastSeen)}{stale(i.lastSeen) ? <b className="stale"> stale</b> : null}</td>
            </tr>
          ))}
        </tbody>
      </table>

      <h2>Access review <span className="muted">(as <code>sluice review --unused-days {STALE_DAYS}</code>)</span></h2>
      {review.error && <p className="error">{review.error}</p>}
      {review.data && (
        <>
          <table data-testid="review">
            <thead><tr><th>identity</th><th>key</th><th>groups</th><th>last used</th><th>sessions</th><th>statements</th><th>by class</th><th>denied</th><th>reviewed</th><th>top refusing rules</th></tr></thead>
            <tbody>
              {review.data.identities.map((r) => (
                <tr key={r.identity} className={r.unused ? 'flag' : ''}>
                  <td>{r.identity}</td><td>{r.status}{r.unused ? <b className="stale"> unused</b> : null}</td><td>{r.groups.join(', ')}</td>
                  <td>{ago(r.lastUsedAt)}</td><td>{r.sessions}</td><td>{r.statements}</td>
                  <td>{Object.entries(r.classes).map(([c, n]) => `${c} ${n}`).join(', ')}</td>
                  <td>{r.refusals.deny}</td><td>{r.refusals.review}</td><td>{r.refusals.topRules.map((t) => `${t.rule} (${t.count})`).join(', ')}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <p>Rules that never decided a statement: {review.data.rules.neverMatched === null ? 'unknown' : review.data.rules.neverMatched.join(', ') || 'none'}
            <span className="muted"> — {review.data.rules.note}</span></p>
          <p>Refused by the default deny: {review.data.rules.defaultDeny}; by builtin safeguards: {review.data.rules.builtinRefusals.map((b) => `${b.rule} (${b.count})`).join(', ') || 'none'}.</p>
        </>
      )}
    </section>
  );
}
