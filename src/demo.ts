import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { ConfigSchema, type SluiceConfig } from './config/model.js';

/**
 * The embedded demo: `npm start` with no config runs Sluice in front of an in-process PGlite database
 * (PostgreSQL compiled to WASM) served on loopback by pglite-socket, seeded with a small shop schema of fake PII.
 * Nothing to install, nothing persisted in the database between runs; the audit store lives in `dataDir`.
 */
export interface DemoDatabase {
  config: SluiceConfig;
  stop(): Promise<void>;
}

const SEED = `
CREATE TABLE customers (
  id serial PRIMARY KEY,
  full_name text NOT NULL,
  email text NOT NULL UNIQUE,
  ssn text NOT NULL,
  phone text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE products (id serial PRIMARY KEY, sku text UNIQUE NOT NULL, name text NOT NULL, price_cents int NOT NULL);
CREATE TABLE orders (
  id serial PRIMARY KEY,
  customer_id int NOT NULL REFERENCES customers(id),
  product_id int NOT NULL REFERENCES products(id),
  quantity int NOT NULL CHECK (quantity > 0),
  card_last4 text,
  placed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO customers (full_name, email, ssn, phone) VALUES
  ('Ada Lovelace',  'ada@example.com',   '078-05-1120', '+1-555-0100'),
  ('Alan Turing',   'alan@example.org',  '219-09-9999', '+1-555-0101'),
  ('Grace Hopper',  'grace@example.net', '457-55-5462', '+1-555-0102'),
  ('Edsger Dijkstra','edsger@example.com','323-45-6789', NULL);
INSERT INTO products (sku, name, price_cents) VALUES
  ('KB-01', 'Mechanical keyboard', 12900), ('MS-02', 'Trackball', 5900), ('MN-03', '27" monitor', 32900);
INSERT INTO orders (customer_id, product_id, quantity, card_last4) VALUES
  (1, 1, 1, '4242'), (1, 3, 2, '4242'), (2, 2, 1, '1881'), (3, 1, 3, '0005'), (4, 2, 1, '7777');
`;

export async function startDemoDatabase(opts: { dataDir: string; listenPort: number }): Promise<DemoDatabase> {
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const db = await PGlite.create();
  await db.exec(SEED);
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 16 });
  await server.start();
  const port = Number(new URL(`postgres://${server.getServerConn()}`).port);
  const config = ConfigSchema.parse({
    listen: { host: '127.0.0.1', port: opts.listenPort },
    dataDir: opts.dataDir,
    targets: [{ name: 'shop', host: '127.0.0.1', port, database: 'postgres', user: 'postgres', tls: { mode: 'disable' } }],
    // Demo agents may read and explore; writes wait for an operator's approval (the console's inbox, or `sluice approve`); schema changes never.
    policy: {
      rules: [{
        name: 'demo-agents',
        match: { groups: ['demo'] },
        allow: ['read', 'transaction', 'session', 'utility', 'copy_out'],
        review: ['write'],
        deny: ['ddl', 'admin', 'copy_in'],
      }],
    },
  });
  return {
    config,
    async stop() {
      await server.stop();
      await db.close();
    },
  };
}

export function demoDataDir(cwd = process.cwd()): string {
  return join(cwd, '.sluice', 'demo');
}
