import { useCallback, useEffect, useState } from 'react';
import { parseRoute, routeHash, type Route } from './format.js';
import { useApprovals } from './state/approvals.js';
import { useClient, useConnectionState } from './state/console-context.js';
import { FeedScreen } from './screens/feed.js';
import { IdentitiesScreen } from './screens/identities.js';
import { InboxScreen } from './screens/inbox.js';
import { RulesScreen } from './screens/rules.js';
import { SessionsScreen } from './screens/sessions.js';
import { TargetsScreen } from './screens/targets.js';
import { WelcomeScreen } from './screens/welcome.js';

const TABS: { screen: Route['screen']; label: string }[] = [
  { screen: 'inbox', label: 'Inbox' },
  { screen: 'feed', label: 'Live feed' },
  { screen: 'rules', label: 'Rules' },
  { screen: 'sessions', label: 'Sessions' },
  { screen: 'identities', label: 'Identities' },
  { screen: 'targets', label: 'Targets' },
  { screen: 'welcome', label: 'Connect' },
];

export function App() {
  const client = useClient();
  const conn = useConnectionState();
  const approvals = useApprovals();
  const [route, setRoute] = useState<Route>(() => parseRoute(window.location.hash));

  useEffect(() => {
    const onHash = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  // First run: nothing recorded yet and no route asked for: show how to connect a client.
  useEffect(() => {
    if (window.location.hash !== '') return;
    client.listSessions({ limit: 1 }).then((s) => { if (s.length === 0 && window.location.hash === '') go({ screen: 'welcome' }); }, () => {});
    // Once per client; go() is stable.
  }, [client]);

  const go = useCallback((r: Route) => {
    window.location.hash = routeHash(r);
  }, []);

  return (
    <div className="app">
      <header className="top">
        <span className="brand">Sluice</span>
        <nav>
          {TABS.map((t) => (
            <a key={t.screen} href={routeHash(t.screen === 'sessions' ? { screen: 'sessions', sessionId: null, statementId: null } : { screen: t.screen } as Route)}
              className={route.screen === t.screen ? 'active' : ''} data-tab={t.screen}>
              {t.label}
              {t.screen === 'inbox' && approvals.pending.length > 0 ? <span className="badge" data-testid="pending-count">{approvals.pending.length}</span> : null}
            </a>
          ))}
        </nav>
        <span className={`conn conn-${conn.kind}`} data-testid="connection">
          {conn.kind === 'open' ? 'connected' : conn.kind === 'connecting' ? 'connecting…' : `offline: ${conn.reason}`}
        </span>
      </header>
      <main className="screen">
        {route.screen === 'inbox' && <InboxScreen approvals={approvals} />}
        {route.screen === 'feed' && <FeedScreen go={go} />}
        {route.screen === 'rules' && <RulesScreen />}
        {route.screen === 'sessions' && <SessionsScreen route={route} go={go} />}
        {route.screen === 'identities' && <IdentitiesScreen />}
        {route.screen === 'targets' && <TargetsScreen />}
        {route.screen === 'welcome' && <WelcomeScreen />}
      </main>
    </div>
  );
}
