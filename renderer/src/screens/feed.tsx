import { useEffect, useMemo, useState } from 'react';
import { DecisionTag } from '../components/statement-text.js';
import { RateChart } from '../components/rate-chart.js';
import { VirtualList } from '../components/virtual-list.js';
import { duration, time, type Route } from '../format.js';
import { useClient } from '../state/console-context.js';
import { feedStoreOf, type FeedRow } from '../state/feed-store.js';

const ROW = 26;
/** Redraws at most this often however fast statements arrive. */
const REDRAW_MS = 200;

export function FeedScreen({ go }: { go: (r: Route) => void }) {
  const store = feedStoreOf(useClient());
  const [version, setVersion] = useState(store.version);
  const [paused, setPaused] = useState(false);
  const [frozen, setFrozen] = useState<FeedRow[] | null>(null);
  const [f, setF] = useState({ identity: '', target: '', decision: '', text: '' });

  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | null = null;
    const unsub = store.subscribe(() => {
      timer ??= setTimeout(() => { timer = null; setVersion(store.version); }, REDRAW_MS);
    });
    return () => { unsub(); if (timer) clearTimeout(timer); };
  }, [store]);

  const source = paused && frozen ? frozen : store.rows;
  const rows = useMemo(() => {
    const text = f.text.toLowerCase();
    const out: FeedRow[] = [];
    for (let i = source.length - 1; i >= 0; i--) {
      const r = source[i]!;
      if (f.identity && r.identity !== f.identity) continue;
      if (f.target && r.target !== f.target) continue;
      if (f.decision && (r.decision ?? 'none') !== f.decision) continue;
      if (text && !r.text.toLowerCase().includes(text)) continue;
      out.push(r);
    }
    return out;
    // `version` is the store's change counter: the rows array is mutated in place.
  }, [source, version, f]);
  const identities = useMemo(() => [...new Set(store.rows.map((r) => r.identity))].sort(), [store, version]);
  const targets = useMemo(() => [...new Set(store.rows.map((r) => r.target))].sort(), [store, version]);

  const togglePause = () => {
    setFrozen(paused ? null : [...store.rows]);
    setPaused(!paused);
  };

  return (
    <section className="feed">
      <div className="toolbar">
        <h2>Live feed</h2>
        <select value={f.identity} onChange={(e) => setF({ ...f, identity: e.target.value })} aria-label="identity">
          <option value="">all identities</option>{identities.map((i) => <option key={i}>{i}</option>)}
        </select>
        <select value={f.target} onChange={(e) => setF({ ...f, target: e.target.value })} aria-label="target">
          <option value="">all targets</option>{targets.map((t) => <option key={t}>{t}</option>)}
        </select>
        <select value={f.decision} onChange={(e) => setF({ ...f, decision: e.target.value })} aria-label="decision">
          <option value="">all decisions</option><option>allow</option><option>review</option><option>deny</option>
        </select>
        <input placeholder="text contains…" value={f.text} onChange={(e) => setF({ ...f, text: e.target.value })} aria-label="text filter" />
        <button onClick={togglePause} data-testid="pause">{paused ? `Resume (${store.rows.length - (frozen?.length ?? 0)} new)` : 'Pause'}</button>
        <span className="muted" data-testid="feed-count">{rows.length.toLocaleString('en-US')} shown</span>
      </div>
      <RateChart store={store} />
      <div className="feed-head vrow">
        <span>time</span><span>identity</span><span>target</span><span>decision</span><span>duration</span><span>rows</span><span>masked</span><span>statement</span>
      </div>
      {rows.length === 0
        ? <p className="empty">No statements yet{f.identity || f.target || f.decision || f.text ? ' match the filters' : ': they stream in here as clients run them'}.</p>
        : (
          <VirtualList items={rows} rowHeight={ROW} height={Math.max(300, window.innerHeight - 260)} keyOf={(r) => r.id}
            render={(r) => (
              <button className={`feed-row row-${r.decision ?? 'none'}`} data-testid="feed-row" title={r.reason ?? r.text}
                onClick={() => go({ screen: 'sessions', sessionId: r.sessionId, statementId: r.id })}>
                <span>{time(r.receivedAt)}</span><span>{r.identity}</span><span>{r.target}</span>
                <span><DecisionTag decision={r.decision} /></span><span>{duration(r.durationMs)}</span>
                <span>{r.rows ?? '—'}</span><span data-testid="feed-masked" title="result columns Sluice masked">{r.maskedFields ?? '—'}</span>
                <code>{r.text}</code>
              </button>
            )} />
        )}
    </section>
  );
}
