/**
 * `sluice serve`'s operator API: the WebSocket server plus a discovery file, so that `sluice approvals` on the same
 * machine and account finds the port and token without anyone copying them around. The file is 0600 in the data
 * directory (already 0700); it is written atomically and removed on close, but only if it is still ours (a second
 * `sluice serve` on the same data directory may have replaced it).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { EventBus } from './event-bus.js';
import type { ContractHandlers } from './service.js';
import { startOperatorServer, type OperatorServer } from './ws-server.js';

export const OPERATOR_FILE = 'operator.json';

export interface OperatorInfo {
  port: number;
  token: string;
  url: string;
  pid: number;
}

export interface RunningOperatorApi extends OperatorServer {
  /** Path of the discovery file. */
  file: string;
}

export async function startOperatorApi(
  broker: { contract: ContractHandlers; events: EventBus },
  opts: { port: number; dataDir: string; log?: (level: 'info' | 'warn' | 'error', msg: string) => void; uiRoot?: string | null },
): Promise<RunningOperatorApi> {
  const server = await startOperatorServer({
    handlers: broker.contract, events: broker.events, port: opts.port,
    ...(opts.log ? { log: opts.log } : {}), ...(opts.uiRoot !== undefined ? { uiRoot: opts.uiRoot } : {}),
  });
  const file = join(opts.dataDir, OPERATOR_FILE);
  const info: OperatorInfo = { port: server.port, token: server.token, url: server.url, pid: process.pid };
  try {
    writePrivate(file, `${JSON.stringify(info)}\n`);
  } catch (err) {
    await server.close();
    throw err;
  }
  const close = server.close.bind(server);
  return {
    ...server,
    file,
    async close() {
      try {
        if ((JSON.parse(readFileSync(file, 'utf8')) as OperatorInfo).token === server.token) unlinkSync(file);
      } catch {
        // gone already, or replaced by something that is not ours to remove
      }
      await close();
    },
  };
}

/** The running serve's port and token, from the data directory; a clear error when none is running. */
export function readOperatorInfo(dataDir: string): OperatorInfo {
  const file = join(dataDir, OPERATOR_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new Error(`no running \`sluice serve\` found for data directory ${dataDir} (${file} is missing); start one, or pass the same --config`);
  }
  const v = JSON.parse(text) as Partial<OperatorInfo>;
  if (typeof v.port !== 'number' || typeof v.token !== 'string' || typeof v.url !== 'string') throw new Error(`${file} is not a Sluice operator file`);
  return { port: v.port, token: v.token, url: v.url, pid: v.pid ?? 0 };
}

/** Created 0600 under a temporary name, then renamed: the token is never readable by others, even briefly. */
function writePrivate(path: string, text: string): void {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, path);
  } catch (err) {
    try { unlinkSync(tmp); } catch { /* nothing to clean */ }
    throw err;
  }
}
