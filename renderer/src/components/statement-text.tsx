import type { FormattedStatement } from '../../../src/contract/api.js';

/** The statement as the operator must read it: every invisible or reordering character is a visible mark. */
export function StatementText({ formatted }: { formatted: FormattedStatement }) {
  return (
    <>
      <pre className="sql" data-testid="statement">
        {formatted.segments.map((s, i) =>
          s.kind === 'text'
            ? <span key={i}>{s.text}</span>
            : <span key={i} className={`mark mark-${s.category}`} title={s.name}>⟦{s.codePoint} {s.name}⟧</span>)}
      </pre>
      {formatted.warnings.map((w) => <p key={w} className="warning">⚠ {w}</p>)}
    </>
  );
}

export function DecisionTag({ decision }: { decision: string | null }) {
  const d = decision ?? 'none';
  return <span className={`decision decision-${d}`}>{d}</span>;
}
