/** Medians, ratios and the printed table of a bench run. */
import type { QueryMode } from './pgbench.js';

export const TARGETS = ['direct', 'pgbouncer', 'pipe', 'sluice'] as const;
export type TargetName = (typeof TARGETS)[number];
export const PROXIES = ['pgbouncer', 'pipe', 'sluice'] as const;
export type ProxyName = (typeof PROXIES)[number];

export interface Scenario {
  mode: QueryMode;
  clients: number;
  threads: number;
}

export interface RunRecord {
  round: number;
  mode: QueryMode;
  clients: number;
  target: TargetName;
  tps?: number;
  statements?: number;
  /** Proxy process CPU (utime+stime) per statement over the run; absent for direct. */
  cpuUsPerStatement?: number;
  error?: string;
}

export interface ScenarioSummary {
  mode: QueryMode;
  clients: number;
  medianTps: Record<TargetName, number | null>;
  tpsRatioToPgbouncer: Record<TargetName, number | null>;
  cpuUsPerStatement: Record<ProxyName, number | null>;
  sluiceCpuRatioToPgbouncer: number | null;
}

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const ratio = (a: number | null, b: number | null): number | null => (a === null || b === null || b === 0 ? null : a / b);

export function summarize(scenarios: Scenario[], runs: RunRecord[]): ScenarioSummary[] {
  return scenarios.map(({ mode, clients }) => {
    const of = (t: TargetName) => runs.filter((r) => r.mode === mode && r.clients === clients && r.target === t && !r.error);
    const medianTps = Object.fromEntries(TARGETS.map((t) => [t, median(of(t).map((r) => r.tps!))])) as ScenarioSummary['medianTps'];
    const cpu = Object.fromEntries(
      PROXIES.map((p) => [p, median(of(p).map((r) => r.cpuUsPerStatement!))]),
    ) as ScenarioSummary['cpuUsPerStatement'];
    return {
      mode,
      clients,
      medianTps,
      tpsRatioToPgbouncer: Object.fromEntries(TARGETS.map((t) => [t, ratio(medianTps[t], medianTps.pgbouncer)])) as ScenarioSummary['tpsRatioToPgbouncer'],
      cpuUsPerStatement: cpu,
      sluiceCpuRatioToPgbouncer: ratio(cpu.sluice, cpu.pgbouncer),
    };
  });
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const fmt = (x: number | null, digits = 0): string => (x === null ? '-' : x.toFixed(digits));

export function renderTables(summaries: ScenarioSummary[]): string {
  const tps = table(
    ['mode', 'clients', ...TARGETS.map((t) => `${t} TPS`), ...TARGETS.filter((t) => t !== 'pgbouncer').map((t) => `${t}/pgb`)],
    summaries.map((s) => [
      s.mode,
      String(s.clients),
      ...TARGETS.map((t) => fmt(s.medianTps[t])),
      ...TARGETS.filter((t) => t !== 'pgbouncer').map((t) => fmt(s.tpsRatioToPgbouncer[t], 2)),
    ]),
  );
  const cpu = table(
    ['mode', 'clients', ...PROXIES.map((p) => `${p} µs/stmt`), 'sluice/pgb CPU'],
    summaries.map((s) => [
      s.mode,
      String(s.clients),
      ...PROXIES.map((p) => fmt(s.cpuUsPerStatement[p], 1)),
      fmt(s.sluiceCpuRatioToPgbouncer, 2),
    ]),
  );
  return `Throughput (median TPS; ratio to PgBouncer)\n${tps}\n\nProxy CPU per statement (utime+stime of the proxy process)\n${cpu}`;
}
