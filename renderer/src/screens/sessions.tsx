import { useEffect, useState } from 'react';
import type { Args, ChainStatus, SessionSummary } from '../../../src/contract/api.js';
import { dateTime, download, type Route } from '../format.js';
import { useClient, useLoad } from '../state/console-context.js';
import { Replay } from './replay.js';

type Filters = { identity: string; target: string; since: string; until: string; refusals: '' | 'yes' | 'no' };

function toArgs(f: Filters): Args<'listSessions'> {
  const ms = (v: string) => (v ? new Date(v).getTime() : undefined);
  return {
    limit: 200,
    ...(f.identity ? { identity: f.identity } : {}),
    ...(f.target ? { target: f.target } : {}),
    ...(ms(f.since) !== undefined ? { since: ms(f.since) } : {}),
    ...(ms(f.until) !== undefined ? { until: ms(f.until) } : {}),
    ...(f.refusals ? { hadRefusals: f.refusals === 'yes' } : {}),
  };
}

/** Sessions from the audit store only (SQLite): all of this works with every database unreachable. */
export function SessionsScreen({ route, go }: { route: Extract<Route, { screen: 'sessions' }>; go: (r: Route) => void }) {
  const client = useClient();
  const [draft, setDraft] = useState<Filters>({ identity: '', target: '', since: '', until: '', refusals: '' });
  const [filters, setFilters] = useState(draft);
  const sessions = useLoad(() => client.listSessions(toArgs(filters)), [client, filters]);
  const [chain, setChain] = useState<ChainStatus | null>(null);
  const [chainError, setChainError] = useState<string | null>(null);

  useEffect(() => {
    client.verifyChain({}).then(setChain, (e: Error) => setChainError(e.message));
  }, [client, route.sessionId]);

  const open = (s: SessionSummary) => go({ screen: 'sessions', sessionId: s.id, statementId: null });
  const exportIt = async (id: number) => {
    const e = await client.exportSession({ sessionId: id });
    download(e.filename, e.jsonl);
  };

  return (
    <section className="sessions">
      <div className="toolbar">
        <h2>Sessions</h2>
        <form className="filters" onSubmit={(e) => { e.preventDefault(); setFilters(draft); }}>
          <input placeholder="identity" value={draft.identity} onChange={(e) => setDraft({ ...draft, identity: e.target.value })} aria-label="identity" />
          <input placeholder="target" value={draft.target} onChange={(e) => setDraft({ ...draft, target: e.target.value })} aria-label="target" />
          <label>from <input type="datetime-local" value={draft.since} onChange={(e) => setDraft({ ...draft, since: e.target.value })} /></label>
          <label>to <input type="datetime-local" value={draft.until} onChange={(e) => setDraft({ ...draft, until: e.target.value })} /></label>
          <select value={draft.refusals} onChange={(e) => setDraft({ ...draft, refusals: e.target.value as Filters['refusals'] })} aria-label="refusals">
            <option value="">with or without refusals</option><option value="yes">had refusals</option><option value="no">no refusals</option>
          </select>
          <button type="submit">Filter</button>
        </form>
      </div>
      <div className="split">
        <div className="session-list" data-testid="session-list">
          {sessions.error && <p className="error">{sessions.error}</p>}
          {sessions.data?.length === 0 && <p className="empty">No sessions recorded{filters.identity || filters.target ? ' for these filters' : ' yet'}.</p>}
          {sessions.data?.map((s) => (
            <button key={s.id} className={`session-item${s.id === route.sessionId ? ' active' : ''}`} onClick={() => open(s)} data-testid="session-item">
              <strong>#{s.id} {s.identity}</strong> → {s.target}
              <span className="muted"> {dateTime(s.startedAt)} · {s.statements} stmt{s.refusals ? <b className="refused"> · {s.refusals} refused</b> : null}{s.endedAt ? '' : ' · open'}</span>
            </button>
          ))}
        </div>
        <div className="session-detail">
          {route.sessionId === null
            ? <p className="empty">Open a session to replay it.</p>
            : <Replay key={route.sessionId} sessionId={route.sessionId} statementId={route.statementId}
                session={sessions.data?.find((s) => s.id === route.sessionId) ?? null}
                chain={chain} chainError={chainError} onExport={() => void exportIt(route.sessionId!)} />}
        </div>
      </div>
    </section>
  );
}
