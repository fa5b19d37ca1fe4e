import { useEffect, useRef, useState } from 'react';
import type { ImpactEstimate, PendingApproval } from '../../../src/contract/api.js';
import { StatementText } from '../components/statement-text.js';
import { ago, time } from '../format.js';
import type { ApprovalsState } from '../state/approvals.js';
import { useClient } from '../state/console-context.js';

function impactText(i: ImpactEstimate): string {
  switch (i.kind) {
    case 'pending': return 'estimating…';
    case 'estimate': return `≈ ${i.rows.toLocaleString()} row(s) ${i.operation}${i.relation ? ` in ${i.relation}` : ''} (${i.source})`;
    case 'not_applicable': return `n/a: ${i.reason}`;
    case 'unavailable': return `unavailable: ${i.reason}`;
  }
}

function Countdown({ deadlineAt }: { deadlineAt: number }) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 250);
    return () => clearInterval(t);
  }, []);
  const left = Math.max(0, Math.ceil((deadlineAt - now) / 1000));
  return <span className={`countdown${left <= 10 ? ' urgent' : ''}`} data-testid="countdown">{Math.floor(left / 60)}:{String(left % 60).padStart(2, '0')} left</span>;
}

function Card({ a, selected, onSelect }: { a: PendingApproval; selected: boolean; onSelect: () => void }) {
  const ref = useRef<HTMLElement>(null);
  useEffect(() => { if (selected) ref.current?.scrollIntoView({ block: 'nearest' }); }, [selected]);
  return (
    <article ref={ref} className={`card${selected ? ' selected' : ''}`} onClick={onSelect} data-testid="approval" data-id={a.id}>
      <header>
        <strong>{a.identity}</strong>{a.groups.length ? <span className="muted"> ({a.groups.join(', ')})</span> : null}
        <span> → <strong>{a.target}</strong></span>
        <span className="muted"> · {a.applicationName ?? 'no application_name'} · {a.clientAddr ?? '?'} · session {a.sessionId}</span>
        <Countdown deadlineAt={a.deadlineAt} />
      </header>
      <StatementText formatted={a.formatted} />
      <dl className="facts">
        <dt>class</dt><dd>{a.classes.join(', ') || '—'}</dd>
        <dt>tables</dt><dd>{a.tables.join(', ') || '—'}</dd>
        <dt>columns</dt><dd>{a.columns.join(', ') || '—'}</dd>
        <dt>masked columns</dt><dd>{a.maskedColumns.join(', ') || 'none'}</dd>
        <dt>estimated rows</dt><dd data-testid="impact">{impactText(a.impact)}</dd>
        <dt>rule</dt><dd>{a.rule ?? '—'}</dd>
        {a.params ? <><dt>parameters</dt><dd>{a.params.map((p, i) => `$${i + 1}=${p ?? 'NULL'}`).join(', ')}</dd></> : null}
        <dt>requested</dt><dd>{time(a.requestedAt)} ({ago(a.requestedAt)})</dd>
      </dl>
      {a.recentStatements.length > 0 && (
        <details open={selected}>
          <summary>recent statements of the session ({a.recentStatements.length})</summary>
          <ol className="recent">{a.recentStatements.map((s, i) => <li key={i}><code>{s}</code></li>)}</ol>
        </details>
      )}
    </article>
  );
}

/** Keys act only when no text field has the focus: typing a denial reason must not approve anything. */
function typing(target: EventTarget | null): boolean {
  return target instanceof HTMLElement && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName));
}

export function InboxScreen({ approvals }: { approvals: ApprovalsState }) {
  const client = useClient();
  const { pending, recent } = approvals;
  const [selectedId, setSelectedId] = useState<string | null>(null);
  const [denying, setDenying] = useState<string | null>(null);
  const [reason, setReason] = useState('');
  const [message, setMessage] = useState<string | null>(null);
  const selected = pending.find((a) => a.id === selectedId) ?? pending[0] ?? null;

  const decide = async (id: string, decision: 'approve_once' | 'approve_session' | 'deny', why?: string) => {
    try {
      const r = await client.decide(decision === 'deny' ? { id, decision, reason: why ?? '' } : { id, decision });
      setMessage(r.outcome === 'applied' ? `${decision.replace('_', ' ')}: ${r.approval.identity} on ${r.approval.target}` : r.message);
    } catch (e) {
      setMessage((e as Error).message);
    }
  };

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (typing(e.target) || e.ctrlKey || e.metaKey || e.altKey || denying) return;
      const i = selected ? pending.indexOf(selected) : -1;
      if (e.key === 'j' && pending.length) setSelectedId(pending[Math.min(pending.length - 1, i + 1)]!.id);
      else if (e.key === 'k' && pending.length) setSelectedId(pending[Math.max(0, i - 1)]!.id);
      else if (!selected) return;
      else if (e.key === 'a') void decide(selected.id, 'approve_once');
      else if (e.key === 's') void decide(selected.id, 'approve_session');
      else if (e.key === 'd') { setDenying(selected.id); setReason(''); e.preventDefault(); }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  });

  return (
    <section className="inbox">
      <div className="toolbar">
        <h2>Approval inbox</h2>
        <span className="muted">j/k move · <kbd>a</kbd> approve once · <kbd>s</kbd> approve for the session · <kbd>d</kbd> deny with a reason</span>
      </div>
      {message && <p className="flash" data-testid="flash">{message}</p>}
      {pending.length === 0 && <p className="empty" data-testid="inbox-empty">Nothing waits for you. Statements a rule sends to review appear here, live.</p>}
      <div className="cards">
        {pending.map((a) => <Card key={a.id} a={a} selected={a === selected} onSelect={() => setSelectedId(a.id)} />)}
      </div>
      {selected && (
        <div className="actions">
          <button onClick={() => void decide(selected.id, 'approve_once')}>Approve once (a)</button>
          <button onClick={() => void decide(selected.id, 'approve_session')}>Approve for session (s)</button>
          <button className="danger" onClick={() => { setDenying(selected.id); setReason(''); }}>Deny… (d)</button>
        </div>
      )}
      {denying && (
        <form className="dialog" onSubmit={(e) => { e.preventDefault(); if (reason.trim()) { void decide(denying, 'deny', reason.trim()); setDenying(null); } }}>
          <label>Why is it denied? The client receives this reason.
            <input autoFocus value={reason} onChange={(e) => setReason(e.target.value)} data-testid="deny-reason"
              onKeyDown={(e) => { if (e.key === 'Escape') setDenying(null); }} maxLength={1000} />
          </label>
          <button type="submit" disabled={!reason.trim()}>Deny (Enter)</button>
          <button type="button" onClick={() => setDenying(null)}>Cancel (Esc)</button>
        </form>
      )}
      {recent.length > 0 && (
        <>
          <h3>Recently decided</h3>
          <ul className="recent-decisions">
            {recent.map((r) => <li key={r.id}><code>{r.statement.slice(0, 120)}</code> — {r.resolution.kind.replace('_', ' ')}{'operator' in r.resolution ? ` by ${r.resolution.operator}` : ''}{r.resolution.reason ? `: ${r.resolution.reason}` : ''}</li>)}
          </ul>
        </>
      )}
    </section>
  );
}
