import { useState } from 'react';
import type { TryStatementResult } from '../../../src/contract/api.js';
import { DecisionTag } from '../components/statement-text.js';
import { useClient, useLoad } from '../state/console-context.js';

/** Identity + target + SQL -> what the running policy decides, by which rule, and which masking rules apply. */
export function TryIt({ policyVersion }: { policyVersion: number }) {
  const client = useClient();
  const targets = useLoad(() => client.listTargets({}), [client]);
  const [identity, setIdentity] = useState('');
  const [groups, setGroups] = useState('');
  const [target, setTarget] = useState('');
  const [sql, setSql] = useState('');
  const [result, setResult] = useState<TryStatementResult | null>(null);
  const [error, setError] = useState<string | null>(null);

  const run = async () => {
    setError(null);
    try {
      const g = groups.split(',').map((x) => x.trim()).filter(Boolean);
      setResult(await client.tryStatement({
        identity: identity.trim(), target: target || targets.data?.[0]?.name || '', sql, ...(g.length ? { groups: g } : {}),
      }));
    } catch (e) {
      setResult(null);
      setError((e as Error).message);
    }
  };

  return (
    <div className="try-it" data-testid="try-it">
      <h3>Try it <span className="muted">(against the running policy, version {policyVersion}; nothing is executed)</span></h3>
      <form onSubmit={(e) => { e.preventDefault(); void run(); }}>
        <input placeholder="identity" value={identity} onChange={(e) => setIdentity(e.target.value)} aria-label="try identity" />
        <input placeholder="groups (default: the identity's)" value={groups} onChange={(e) => setGroups(e.target.value)} aria-label="try groups" />
        <select value={target} onChange={(e) => setTarget(e.target.value)} aria-label="try target">
          {targets.data?.map((t) => <option key={t.name} value={t.name}>{t.name}</option>)}
        </select>
        <textarea placeholder="SELECT …" value={sql} onChange={(e) => setSql(e.target.value)} aria-label="try sql" rows={3} />
        <button type="submit" disabled={!identity.trim() || !sql.trim()}>Decide</button>
      </form>
      {error && <p className="error">{error}</p>}
      {result && (
        <div className="try-result" data-testid="try-result">
          <p><DecisionTag decision={result.decision} /> by <code>{result.rule}</code> — {result.message}</p>
          {result.hint && <p className="muted">hint: {result.hint}</p>}
          <dl className="facts">
            <dt>groups</dt><dd>{result.groups.join(', ') || 'none'}</dd>
            <dt>classes</dt><dd>{result.classes.join(', ') || '—'}</dd>
            <dt>tables</dt><dd>{result.tables.join(', ') || '—'}</dd>
            <dt>masked columns</dt><dd data-testid="try-masked">{result.maskedColumns ? result.maskedColumns.join(', ') || 'none' : 'unknown (see the note)'}</dd>
            <dt>masking rules</dt><dd>{result.masking.rules.map((r) => `${r.name} (${r.columns.join(', ')})`).join('; ') || 'none'} <span className="muted">{result.masking.note}</span></dd>
          </dl>
          {result.statements.length > 1 && (
            <ol>{result.statements.map((s, i) => <li key={i}><DecisionTag decision={s.decision} /> {s.class} by {s.rule}: <code>{s.text}</code></li>)}</ol>
          )}
        </div>
      )}
    </div>
  );
}
