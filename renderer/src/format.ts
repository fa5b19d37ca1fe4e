export const time = (ms: number): string => new Date(ms).toLocaleTimeString(undefined, { hour12: false });
export const dateTime = (ms: number | null): string => (ms === null ? '—' : new Date(ms).toLocaleString(undefined, { hour12: false }));

export function ago(ms: number | null, now = Date.now()): string {
  if (ms === null) return 'never';
  const s = Math.round((now - ms) / 1000);
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  return ms < 1 ? '<1 ms' : ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** Navigation inside the console: a hash route (works over http and under Electron's custom protocol alike). */
export type Route =
  | { screen: 'inbox' | 'feed' | 'rules' | 'identities' | 'targets' | 'welcome' }
  | { screen: 'sessions'; sessionId: number | null; statementId: number | null };

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/');
  const screen = parts[0] ?? '';
  if (screen === 'sessions') {
    const id = Number(parts[1]);
    const st = Number(parts[2]);
    return { screen, sessionId: Number.isInteger(id) && id > 0 ? id : null, statementId: Number.isInteger(st) && st > 0 ? st : null };
  }
  if (screen === 'feed' || screen === 'rules' || screen === 'identities' || screen === 'targets' || screen === 'welcome' || screen === 'inbox') {
    return { screen };
  }
  return { screen: 'inbox' };
}

export function routeHash(r: Route): string {
  if (r.screen !== 'sessions') return `#/${r.screen}`;
  return `#/sessions${r.sessionId ? `/${r.sessionId}${r.statementId ? `/${r.statementId}` : ''}` : ''}`;
}

export function download(filename: string, text: string, type = 'application/x-ndjson'): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
