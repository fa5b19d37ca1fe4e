/**
 * `sluice approvals [--watch]`, `sluice approve ID [--session]`, `sluice deny ID --reason ...`: the approval inbox
 * for terminals and scripts. They talk to the running `sluice serve` over its operator WebSocket (port and token
 * from the 0600 discovery file in the data directory), so a decision here is the same decision as in the UI.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Args, ImpactEstimate, PendingApproval, ResolvedApproval, SluiceEvent } from '../contract/api.js';
import { readOperatorInfo } from './serve.js';
import { ApiCallError, connectContract, type ContractClient } from './ws-client.js';

type Out = { log(s: string): void; error(s: string): void };

export const APPROVAL_HELP = {
  approvals: `sluice approvals [--watch] [--json] [--config FILE]

Lists statements waiting for an operator, oldest first, with who sent them, the rule that asked for review, the
estimated rows touched and the statement with invisible and bidi characters shown as ⟦U+XXXX NAME⟧.
  --watch   keep running and print requests and decisions as they happen (Ctrl-C to stop)
  --json    print the pending approvals as JSON`,
  approve: `sluice approve ID [--session] [--reason TEXT] [--config FILE]

Lets the held statement ID run once (exactly that statement and its parameters).
  --session   also allow statements of the same shape for the rest of that session
  --reason    recorded in the audit log with your decision`,
  deny: `sluice deny ID --reason TEXT [--config FILE]

Refuses the held statement ID: the client gets ERROR 42501 with your reason; its connection stays open.`,
} as const;

export type ApprovalCommand = keyof typeof APPROVAL_HELP;

const OPTIONS = {
  approvals: { watch: { type: 'boolean' }, json: { type: 'boolean' } },
  approve: { session: { type: 'boolean' }, reason: { type: 'string' } },
  deny: { reason: { type: 'string' } },
} as const;

/**
 * Runs one of the commands; `dataDirFor` maps --config to the data directory (as the other commands resolve it).
 * `signal` stops `--watch` (Ctrl-C does otherwise).
 */
export async function approvalCommand(
  cmd: ApprovalCommand,
  argv: string[],
  out: Out,
  dataDirFor: (config: string | undefined) => string,
  signal?: AbortSignal,
): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    const options: ParseArgsConfig['options'] = { ...OPTIONS[cmd], config: { type: 'string' }, help: { type: 'boolean', short: 'h' } };
    const parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options });
    values = parsed.values as Record<string, string | boolean | undefined>;
    positionals = parsed.positionals;
  } catch (err) {
    return usage(out, cmd, (err as Error).message);
  }
  if (values.help) { out.log(APPROVAL_HELP[cmd]); return 0; }
  const wanted = cmd === 'approvals' ? 0 : 1;
  if (positionals.length !== wanted) return usage(out, cmd, `expected ${wanted} argument(s)`);
  const reason = typeof values.reason === 'string' ? values.reason.trim() : undefined;
  if (cmd === 'deny' && !reason) return usage(out, cmd, 'a denial needs --reason TEXT (the client sees it)');

  const info = readOperatorInfo(dataDirFor(values.config as string | undefined));
  const client = await connectContract(info.url, info.token);
  try {
    if (cmd === 'approvals') return await list(client, out, values.watch === true, values.json === true, signal);
    const id = positionals[0]!;
    const args: Args<'decide'> = cmd === 'deny'
      ? { id, decision: 'deny', reason: reason! }
      : { id, decision: values.session ? 'approve_session' : 'approve_once', ...(reason ? { reason } : {}) };
    const result = await client.call('decide', args);
    if (result.outcome === 'applied') {
      out.log(`${id}: ${describeResolution(result.approval)}`);
      return 0;
    }
    out.error(result.message);
    return 1;
  } catch (err) {
    if (err instanceof ApiCallError && err.error.code === 'invalid_arguments') return usage(out, cmd, err.message);
    throw err;
  } finally {
    client.close();
  }
}

function usage(out: Out, cmd: ApprovalCommand, message: string): number {
  out.error(`${message}\n\n${APPROVAL_HELP[cmd]}`);
  return 2;
}

async function list(client: ContractClient, out: Out, watch: boolean, json: boolean, signal?: AbortSignal): Promise<number> {
  // Subscribe before listing so nothing that happens in between is missed.
  const buffered: SluiceEvent[] = [];
  let print: ((e: SluiceEvent) => void) | null = null;
  client.onEvents((events) => {
    for (const e of events) (print ? print(e) : buffered.push(e));
  });
  const pending = await client.call('listApprovals', {});
  if (json) out.log(JSON.stringify(pending, null, 2));
  else if (pending.length === 0) out.log('no statements are waiting for approval');
  else for (const a of pending) out.log(card(a));
  if (!watch) return 0;

  const seen = new Set(pending.map((a) => a.id));
  print = (e) => {
    if (e.type === 'approval_requested' && !seen.has(e.approval.id)) {
      seen.add(e.approval.id);
      out.log(json ? JSON.stringify(e) : card(e.approval));
    } else if (e.type === 'approval_updated') {
      out.log(json ? JSON.stringify(e) : `${e.approval.id}: ${impactLine(e.approval.impact)}`);
    } else if (e.type === 'approval_resolved') {
      out.log(json ? JSON.stringify(e) : `${e.approval.id}: ${describeResolution(e.approval)}`);
    }
  };
  for (const e of buffered) print(e);
  const stop = new Promise<string>((resolve) => {
    const onSignal = () => resolve('interrupted');
    process.once('SIGINT', onSignal);
    signal?.addEventListener('abort', () => resolve('stopped'), { once: true });
    void client.closed.then((why) => resolve(`connection closed: ${why}`)).finally(() => process.off('SIGINT', onSignal));
  });
  const why = await stop;
  return why.startsWith('connection closed') ? (out.error(why), 1) : 0;
}

export function card(a: PendingApproval, now = Date.now()): string {
  const age = Math.max(0, Math.round((now - a.requestedAt) / 1000));
  const left = Math.max(0, Math.round((a.deadlineAt - now) / 1000));
  const lines = [
    `${a.id}  ${a.identity}@${a.target}${a.applicationName ? ` (${a.applicationName})` : ''}  session ${a.sessionId}  ` +
      `${a.classes.join(',') || '-'}  waiting ${age}s, ${left}s left${a.rule ? `  rule ${a.rule}` : ''}`,
    `  ${impactLine(a.impact)}`,
  ];
  if (a.tables.length > 0) lines.push(`  touches: ${a.tables.join(' ')}`);
  if (a.maskedColumns.length > 0) lines.push(`  masked: ${a.maskedColumns.join(' ')}`);
  for (const w of a.formatted.warnings) lines.push(`  WARNING: ${w}`);
  lines.push(...a.formatted.text.split('\n').map((l) => `  | ${l}`));
  if (a.params && a.params.length > 0) lines.push(`  params: ${a.params.map((p, i) => `$${i + 1}=${p === null ? 'NULL' : JSON.stringify(p)}`).join(' ')}`);
  return lines.join('\n');
}

export function impactLine(i: ImpactEstimate): string {
  switch (i.kind) {
    case 'pending': return 'impact: estimating…';
    case 'estimate': return `impact: about ${i.rows} row(s) (${i.operation}${i.relation ? ` ${i.relation}` : ''}; planner estimate, not a count)`;
    case 'not_applicable': return `impact: n/a (${i.reason})`;
    case 'unavailable': return `impact: unknown (${i.reason})`;
  }
}

export function describeResolution(a: ResolvedApproval): string {
  const r = a.resolution;
  switch (r.kind) {
    case 'approved_once': return `approved once by ${r.operator}`;
    case 'approved_session': return `approved for session ${a.sessionId} by ${r.operator}`;
    case 'denied': return `denied by ${r.operator}: ${r.reason}`;
    case 'timed_out': return r.reason;
    case 'voided': return `voided: ${r.reason}`;
  }
}
