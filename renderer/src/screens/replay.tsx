import { useEffect, useState } from 'react';
import type { ChainStatus, SessionSummary, StatementSummary } from '../../../src/contract/api.js';
import { DecisionTag } from '../components/statement-text.js';
import { dateTime, duration, time } from '../format.js';
import { useClient } from '../state/console-context.js';

const PAGE = 5000;
const MAX_STATEMENTS = 50_000;
const PLAY_MS = 700;

function ChainBadge({ chain, error, sessionId }: { chain: ChainStatus | null; error: string | null; sessionId: number }) {
  if (error) return <span className="chain chain-unknown">hash chain: {error}</span>;
  if (!chain) return <span className="chain chain-unknown">hash chain: verifying…</span>;
  if (chain.ok) return <span className="chain chain-ok" data-testid="chain">hash chain verifies ({chain.rows} records, head {chain.head.hash.slice(0, 12)}…)</span>;
  const here = chain.sessionId === sessionId;
  return (
    <span className="chain chain-bad" data-testid="chain">
      hash chain broken{here ? ' in this session' : ''}: {chain.firstBad.table} {chain.firstBad.id} {chain.firstBad.problem} — {chain.firstBad.detail}
    </span>
  );
}

export function Replay({ sessionId, statementId, session, chain, chainError, onExport }: {
  sessionId: number; statementId: number | null; session: SessionSummary | null;
  chain: ChainStatus | null; chainError: string | null; onExport: () => void;
}) {
  const client = useClient();
  const [statements, setStatements] = useState<StatementSummary[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [pos, setPos] = useState(0);
  const [playing, setPlaying] = useState(false);

  useEffect(() => {
    let live = true;
    (async () => {
      const all: StatementSummary[] = [];
      for (let after = 0; all.length < MAX_STATEMENTS;) {
        const page = await client.listStatements({ sessionId, afterSeq: after, limit: PAGE });
        all.push(...page);
        if (page.length < PAGE) break;
        after = page[page.length - 1]!.seq;
      }
      if (!live) return;
      setStatements(all);
      const at = statementId === null ? 0 : all.findIndex((s) => s.id === statementId);
      setPos(Math.max(0, at));
    })().catch((e: Error) => { if (live) setError(e.message); });
    return () => { live = false; };
  }, [client, sessionId, statementId]);

  useEffect(() => {
    if (!playing || !statements) return;
    const t = setInterval(() => setPos((p) => {
      if (p + 1 >= statements.length) { setPlaying(false); return p; }
      return p + 1;
    }), PLAY_MS);
    return () => clearInterval(t);
  }, [playing, statements]);

  if (error) return <p className="error">{error}</p>;
  if (!statements) return <p className="muted">loading session {sessionId}…</p>;
  const cur = statements[pos];
  const refusals = statements.map((s, i) => (s.decision === 'deny' ? i : -1)).filter((i) => i >= 0);
  const nextRefusal = refusals.find((i) => i > pos) ?? refusals[0];

  return (
    <div className="replay" data-testid="replay">
      <header>
        <h3>Session #{sessionId}{session ? ` · ${session.identity} → ${session.target}` : ''}</h3>
        {session && <p className="muted">{session.applicationName ?? 'no application_name'} from {session.clientAddr} · {dateTime(session.startedAt)} – {session.endedAt ? `${dateTime(session.endedAt)} (${session.endReason ?? 'ended'})` : 'open'}</p>}
        <ChainBadge chain={chain} error={chainError} sessionId={sessionId} />
        <button onClick={onExport} data-testid="export">Export JSONL</button>
      </header>
      {statements.length === 0 ? <p className="empty">This session recorded no statements.</p> : (
        <>
          <div className="timeline" data-testid="timeline">
            {statements.map((s, i) => (
              <button key={s.id} className={`tick tick-${s.decision ?? 'none'}${i === pos ? ' current' : ''}`} title={`${s.seq}: ${s.text.slice(0, 80)}`} onClick={() => setPos(i)} />
            ))}
          </div>
          <div className="controls">
            <button onClick={() => setPos(0)}>|◀ first</button>
            <button onClick={() => setPos(Math.max(0, pos - 1))} data-testid="step-back">◀ step</button>
            <button onClick={() => setPlaying(!playing)} data-testid="play">{playing ? '❚❚ pause' : '▶ play'}</button>
            <button onClick={() => setPos(Math.min(statements.length - 1, pos + 1))} data-testid="step">step ▶</button>
            <button disabled={nextRefusal === undefined} onClick={() => nextRefusal !== undefined && setPos(nextRefusal)} data-testid="next-refusal">
              next refusal ({refusals.length})
            </button>
            <span className="muted">{pos + 1} / {statements.length}</span>
          </div>
          {cur && (
            <div className="statement-detail" data-testid="replay-statement">
              <p><DecisionTag decision={cur.decision} /> <span className="muted">#{cur.seq} · {time(cur.receivedAt)} · {cur.protocol}{cur.name ? ` ${cur.name}` : ''} · rule {cur.rule ?? '—'}</span></p>
              <pre className="sql">{cur.text}</pre>
              {cur.reason && <p className={cur.decision === 'deny' ? 'reason' : 'muted'}>{cur.decision === 'deny' ? 'refused: ' : ''}{cur.reason}</p>}
              <dl className="facts">
                <dt>class</dt><dd>{cur.classes.join(', ') || '—'}</dd>
                <dt>objects</dt><dd>{cur.objects.join(', ') || '—'}</dd>
                {cur.params && <><dt>parameters</dt><dd>{cur.params.map((p, i) => `$${i + 1}=${p ?? 'NULL'}`).join(', ')}</dd></>}
                <dt>duration</dt><dd>{duration(cur.result?.durationMs)}</dd>
                <dt>rows the client saw</dt><dd data-testid="replay-rows">{cur.result ? (cur.result.rows ?? '—') : cur.decision === 'deny' ? 'none (refused)' : 'not completed'}{cur.result?.bytes ? ` (${cur.result.bytes.toLocaleString()} bytes)` : ''}</dd>
                <dt>masked</dt><dd data-testid="replay-masked">{cur.result?.maskedFields ? `${cur.result.maskedFields} column(s)` : 'none'}</dd>
                {cur.result?.errorCode && <><dt>error</dt><dd>{cur.result.errorCode}: {cur.result.errorMessage}</dd></>}
              </dl>
            </div>
          )}
        </>
      )}
    </div>
  );
}
