import { useClient, useLoad } from '../state/console-context.js';

/** First run: the exact line a newcomer types to see a statement go through Sluice. */
export function WelcomeScreen() {
  const client = useClient();
  const info = useLoad(() => client.getConnectInfo({}), [client]);
  const i = info.data;
  const target = i ? (i.demo ? 'shop' : i.targets[0] ?? 'TARGET') : 'TARGET';
  const user = i ? (i.demo ? 'demo-agent' : i.activeKeys[0] ?? 'IDENTITY') : 'IDENTITY';
  const line = i ? `PGPASSWORD=<the agent key> psql "host=${i.host} port=${i.port} user=${user} dbname=${target} sslmode=disable"` : '…';
  return (
    <section className="welcome" data-testid="welcome">
      <h2>Connect a client</h2>
      <p>Clients connect to Sluice as if it were PostgreSQL: the user name is the identity, the password its agent key
        (or an OIDC token), the database name the target.</p>
      <pre className="psql" data-testid="psql-line">{line}</pre>
      {i?.demo
        ? <p>This is the demo: <code>sluice serve</code> printed the key of <code>demo-agent</code> when it started (look for “Demo agent key created”). Then try <code>SELECT full_name, email FROM customers;</code></p>
        : <p>No key yet? Create one on the <a href="#/identities">Identities</a> screen (the secret is shown once), or with <code>sluice key add NAME --groups a,b</code>.</p>}
      <p>Targets: {i?.targets.join(', ') || '—'}. Every statement then appears in the <a href="#/feed">Live feed</a>; statements a rule sends to review wait in the <a href="#/inbox">Inbox</a>.</p>
      {info.error && <p className="error">{info.error}</p>}
    </section>
  );
}
