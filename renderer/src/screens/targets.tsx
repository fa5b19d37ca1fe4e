import { useClient, useLoad } from '../state/console-context.js';
import { ago } from '../format.js';

export function TargetsScreen() {
  const client = useClient();
  const status = useLoad(() => client.checkTargets({}), [client]);
  return (
    <section className="targets">
      <div className="toolbar">
        <h2>Targets</h2>
        <button onClick={status.reload}>Check again</button>
        <span className="muted">Each check logs in with the target's credential and asks for server_version.</span>
      </div>
      {status.error && <p className="error">{status.error}</p>}
      {!status.data && !status.error && <p className="muted">checking…</p>}
      <table data-testid="targets">
        <thead><tr><th>target</th><th>status</th><th>TLS (Sluice → target)</th><th>server offers TLS</th><th>version</th><th>open sessions</th><th>checked</th></tr></thead>
        <tbody>
          {status.data?.map((t) => (
            <tr key={t.name}>
              <td>{t.name}</td>
              <td className={t.reachable ? 'ok' : 'bad'} data-testid={`target-${t.name}`}>{t.reachable ? `reachable (${t.latencyMs} ms)` : `unreachable: ${t.error}`}</td>
              <td>{t.tlsMode}</td>
              <td>{t.serverOffersTls === null ? '?' : t.serverOffersTls ? 'yes' : 'no'}</td>
              <td>{t.serverVersion ?? '—'}</td>
              <td>{t.openSessions}</td>
              <td>{ago(t.checkedAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
