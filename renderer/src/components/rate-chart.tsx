import { useEffect, useRef } from 'react';
import { CHART_SECONDS, type FeedStore } from '../state/feed-store.js';

/** Statements per second and refusals over the last five minutes, drawn on a canvas once a second. */
export function RateChart({ store }: { store: FeedStore }) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const draw = () => {
      const canvas = ref.current;
      const ctx = canvas?.getContext('2d');
      if (!canvas || !ctx) return;
      const { width, height } = canvas;
      const now = Math.floor(Date.now() / 1000);
      let max = 1;
      for (const [n] of store.perSecond.values()) max = Math.max(max, n);
      ctx.clearRect(0, 0, width, height);
      const w = width / CHART_SECONDS;
      for (let i = 0; i < CHART_SECONDS; i++) {
        const c = store.perSecond.get(now - CHART_SECONDS + 1 + i);
        if (!c) continue;
        const x = i * w;
        ctx.fillStyle = '#5b8def';
        ctx.fillRect(x, height - (c[0] / max) * (height - 12), Math.max(1, w - 0.5), (c[0] / max) * (height - 12));
        if (c[1] > 0) {
          ctx.fillStyle = '#e0524d';
          ctx.fillRect(x, height - (c[1] / max) * (height - 12), Math.max(1, w - 0.5), (c[1] / max) * (height - 12));
        }
      }
      const last = store.perSecond.get(now - 1) ?? [0, 0];
      ctx.fillStyle = '#9aa4b2';
      ctx.font = '11px sans-serif';
      ctx.fillText(`${last[0]}/s, ${last[1]} refused/s (peak ${max}/s, last 5 min)`, 4, 11);
    };
    draw();
    // Once a second, and soon after new statements (at most every 250 ms): the current second's bar grows live.
    const t = setInterval(draw, 1000);
    let pending: ReturnType<typeof setTimeout> | null = null;
    const unsub = store.subscribe(() => { pending ??= setTimeout(() => { pending = null; draw(); }, 250); });
    return () => { clearInterval(t); unsub(); if (pending) clearTimeout(pending); };
  }, [store]);
  return <canvas ref={ref} width={900} height={70} className="chart" data-testid="rate-chart" />;
}
