import net from 'node:net';
import { ClientSession } from './client-session.js';
import type { ProxyContext } from './context.js';

/** Accepts client connections; each becomes a ClientSession. A failure in one never reaches the others. */
export class ProxyListener {
  private readonly server: net.Server;
  private readonly sessions = new Set<ClientSession>();

  constructor(ctx: ProxyContext) {
    this.server = net.createServer({ noDelay: true }, (socket) => {
      let session: ClientSession;
      try {
        session = new ClientSession(socket, ctx);
      } catch (err) {
        ctx.log('error', `could not start session: ${(err as Error).message}`);
        socket.destroy();
        return;
      }
      this.sessions.add(session);
      socket.once('close', () => this.sessions.delete(session));
    });
    this.server.on('error', (err) => ctx.log('error', `listener: ${err.message}`));
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        const a = this.server.address() as net.AddressInfo;
        resolve({ host: a.address, port: a.port });
      });
    });
  }

  get connectionCount(): number {
    return this.sessions.size;
  }

  /** Stops accepting, tells every connected client why, and waits for the sockets to go. */
  async close(message: string): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sessions) s.shutdown(message);
    await closed;
  }
}
