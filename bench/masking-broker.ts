/**
 * The broker for bench/masking.ts, in its own process: in production Sluice never shares a thread with its
 * clients, so the client's row parsing must not be billed to Sluice. Reads the config (JSON) from SLUICE_BENCH_CONFIG,
 * prints `ready PORT SECRET`, stops on SIGTERM.
 */
import { createBroker } from '../src/broker.js';
import { ConfigSchema } from '../src/config/model.js';

const broker = createBroker(ConfigSchema.parse(JSON.parse(process.env.SLUICE_BENCH_CONFIG ?? '{}')), { log: () => {} });
const { port } = await broker.listen();
const { secret } = broker.keys.add('bench', { groups: ['bench'] });
console.log(`ready ${port} ${secret}`);
process.on('SIGTERM', () => void broker.close().then(() => process.exit(0)));
