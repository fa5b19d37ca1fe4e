/**
 * A no-op TCP pipe between pgbench and PostgreSQL, run in its own process by the bench: the floor for what any
 * Node.js proxy costs (event loop, socket reads and writes) before it looks at a single byte.
 *
 *   node dist/bench/pipe.js LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT
 */
import { connect, createServer } from 'node:net';

const [listenPort, upstreamHost, upstreamPort] = process.argv.slice(2);
if (!listenPort || !upstreamHost || !upstreamPort) {
  console.error('usage: pipe.js LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT');
  process.exit(2);
}

// noDelay on both sides: PostgreSQL and PgBouncer disable Nagle too, and without it small replies wait ~40 ms.
const server = createServer({ noDelay: true }, (client) => {
  const upstream = connect({ host: upstreamHost, port: Number(upstreamPort), noDelay: true });
  client.pipe(upstream);
  upstream.pipe(client);
  const close = (): void => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close).on('close', close);
  upstream.on('error', close).on('close', close);
});
server.listen(Number(listenPort), '127.0.0.1', () => console.log(`listening on 127.0.0.1:${listenPort}`));
process.on('SIGTERM', () => process.exit(0));
