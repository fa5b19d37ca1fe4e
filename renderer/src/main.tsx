import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './app.js';
import { ConsoleContext } from './state/console-context.js';
import { createClient } from './transport/transport.js';
import { createWebSocketTransport, sameOriginApiUrl, takeToken } from './transport/ws-transport.js';
import './styles.css';

const root = createRoot(document.getElementById('root')!);
const token = takeToken(window.location, window.sessionStorage, window.history);
if (!token) {
  root.render(
    <main className="no-token">
      <h1>Sluice operator console</h1>
      <p>This page needs the operator token. Open the URL that <code>sluice serve</code> printed at start
        (<code>http://127.0.0.1:PORT/#token=…</code>); the token is also in <code>operator.json</code> in the data directory.</p>
    </main>,
  );
} else {
  const client = createClient(createWebSocketTransport({ url: sameOriginApiUrl(window.location), token }));
  root.render(
    <StrictMode>
      <ConsoleContext.Provider value={client}>
        <App />
      </ConsoleContext.Provider>
    </StrictMode>,
  );
}
