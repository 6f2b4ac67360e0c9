/**
 * deploy/grafana and deploy/prometheus against the metrics the code exports: every query of the
 * dashboard and every alerting rule names metrics (and labels) that the parts' real registries
 * hold, the names follow Prometheus' conventions, and promtool accepts the rules and passes their
 * unit tests (deploy/prometheus/tests/).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Registry } from 'prom-client';
import YAML from 'yaml';
import { AlerterMetrics } from '../../alerts/metrics';
import { EnforcerMetrics } from '../../blocking/enforcer-metrics';
import type { BlockLedger } from '../../blocking/ledger';
import { blockingMetrics } from '../../blocking/metrics';
import { createRegistry } from '../../common/metrics';
import { DetectorMetrics } from '../../detector/metrics';
import { SensorMetrics } from '../../sensor/metrics';

const DEPLOY = path.resolve(__dirname, '../../deploy');

/** Each served part's metrics, registered as the commands register them (bin/xdp-ids.ts, bin/service.ts, alerts/cli.ts, blocking/api.ts). */
/** What a registry holds of each metric (prom-client's metric objects carry these). */
interface Exported {
  name: string;
  type: string;
  labelNames?: string[];
}

function partMetrics(registry: () => Registry): Exported[] {
  const sensor = registry();
  new SensorMetrics(sensor);
  new EnforcerMetrics(sensor);
  const detector = registry();
  new DetectorMetrics(detector);
  const alerter = registry();
  new AlerterMetrics(alerter);
  // Registering reads nothing: the ledger is read only when scraped.
  const api = blockingMetrics({} as BlockLedger, registry());
  return [sensor, detector, alerter, api].flatMap((r) => r.getMetricsAsArray() as unknown as Exported[]);
}

const own = partMetrics(() => new Registry());
const served = partMetrics(() => createRegistry('sensor'));

/** The series names a metric produces, and its labels (with the ones Prometheus and histograms add). */
const series = new Map<string, Set<string>>();
for (const m of served) {
  const labels = new Set([...(m.labelNames ?? []), 'instance', 'job']);
  const names = m.type === 'histogram' ? ['_bucket', '_sum', '_count'].map((s) => `${m.name}${s}`) : [m.name];
  for (const name of names) series.set(name, name.endsWith('_bucket') ? new Set([...labels, 'le']) : labels);
}

/** Every `xdp_ids_…` metric an expression names, with the labels its selector matches on, and the labels it aggregates by. */
function references(expr: string): { metric: string; labels: string[] }[] {
  const out: { metric: string; labels: string[] }[] = [];
  for (const m of expr.matchAll(/\b(xdp_ids_[a-z0-9_]+)(\{([^}]*)\})?/g)) {
    out.push({ metric: m[1], labels: [...(m[3] ?? '').matchAll(/([a-z_]+)\s*(=~|!~|!=|=)/g)].map((l) => l[1]) });
  }
  return out;
}

function byLabels(expr: string): string[] {
  return [...expr.matchAll(/\bby\s*\(([^)]*)\)/g)].flatMap((m) => m[1].split(',').map((l) => l.trim()).filter(Boolean));
}

interface Panel {
  title: string;
  type: string;
  targets?: { expr: string }[];
  panels?: Panel[];
}

const dashboard = JSON.parse(fs.readFileSync(path.join(DEPLOY, 'grafana/xdp-ids.json'), 'utf8')) as { panels: Panel[] };
const queries = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row')
  .flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel "${p.title}"`, expr: t.expr })));
const rules = (YAML.parse(fs.readFileSync(path.join(DEPLOY, 'prometheus/xdp-ids-rules.yml'), 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] })
  .groups.flatMap((g) => g.rules).map((r) => ({ where: `alert ${r.alert}`, expr: r.expr }));

describe('the monitoring the project ships', () => {
  test('the parts export metrics named by Prometheus\' conventions: xdp_ids_ prefix, counters in _total, times in _seconds, no milliseconds', () => {
    expect(own.length).toBeGreaterThan(30);
    for (const m of own) {
      const type = m.type;
      expect(m.name).toMatch(/^xdp_ids_[a-z0-9_]+$/);
      expect(m.name).not.toMatch(/_ms$|millis/);
      if (type === 'counter') expect(m.name).toMatch(/_total$/);
      else expect(m.name).not.toMatch(/_total$/);
      if (type === 'histogram') expect(m.name).toMatch(/_(seconds|ratio|bytes)$/);
    }
  });

  test.each([['dashboard', queries], ['alerting rules', rules]])('every query of the %s names metrics and labels the code exports', (_what, exprs) => {
    expect(exprs.length).toBeGreaterThan(5);
    for (const { where, expr } of exprs) {
      const refs = references(expr);
      // Besides the parts' metrics, only Prometheus' own `up` of the xdp-ids jobs (prometheus.yml).
      expect({ where, namesMetrics: refs.length > 0 || /^up\{job=~"xdp-ids-\.\*"\} == 0$/.test(expr) }).toEqual({ where, namesMetrics: true });
      for (const { metric, labels } of refs) {
        expect({ where, metric, exported: series.has(metric) }).toEqual({ where, metric, exported: true });
        for (const label of [...labels, ...byLabels(expr)]) expect({ where, metric, label, known: series.get(metric)!.has(label) }).toEqual({ where, metric, label, known: true });
      }
    }
  });

  test('the dashboard covers every part: sensor, enforcer, detector, alerter and the ledger', () => {
    const named = new Set(queries.flatMap((q) => references(q.expr).map((r) => r.metric.split('_')[2])));
    expect([...named].sort()).toEqual(expect.arrayContaining(['alerter', 'block', 'blocks', 'detector', 'enforcer', 'sensor']));
  });

  test('promtool accepts the rules and the scrape config, and the rules pass their unit tests', () => {
    const run = (...args: string[]): { status: number | null; out: string } => {
      const r = spawnSync('promtool', args, { encoding: 'utf8', timeout: 60_000, cwd: DEPLOY });
      if (r.error) throw new Error(`promtool: ${r.error.message} (scripts/setup.sh installs Debian's prometheus package for it)`);
      return { status: r.status, out: `${r.stdout}${r.stderr}` };
    };
    expect(run('check', 'rules', 'prometheus/xdp-ids-rules.yml')).toEqual({ status: 0, out: expect.stringContaining('SUCCESS: 9 rules found') });
    expect(run('check', 'config', '--syntax-only', 'prometheus/prometheus.yml')).toEqual({ status: 0, out: expect.stringContaining('SUCCESS') });
    expect(run('test', 'rules', 'prometheus/tests/xdp-ids-rules.test.yml')).toEqual({ status: 0, out: expect.stringContaining('SUCCESS') });
  });
});
