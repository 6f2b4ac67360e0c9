/**
 * The rule engine: feeds every SensorTick's source and destination windows into keyed sliding
 * windows (lane.ts) and returns a Detection for every rule that fires. Pure and synchronous: no
 * I/O, no clocks (time is the ticks' window ids), state bounded by idle eviction and a key cap.
 *
 * Semantics, as rule authors see them (rules/README.md):
 *  - A rule's features are its counters summed over the last `window` (rounded up to whole
 *    sensor windows), then derived features and rates recomputed from those sums. Windows of
 *    more than MAX_BUCKETS sensor windows slide in steps of window/MAX_BUCKETS.
 *  - Keys are evaluated in the windows in which they have traffic. `for` asks the condition to
 *    hold at every such evaluation for that long: `for: 3s` fires at the third consecutive
 *    second; a silent gap shorter than the window does not break the streak.
 *  - A firing rule reports a Detection at every evaluation while it holds; `onset` marks the
 *    first of an episode.
 */
import type { FeatureContribution } from '../../common/alert-events';
import type { DestinationWindow, SensorTick, SourceWindow } from '../../common/sensor-tick';
import { featureValue, LAYOUTS, type AnyLayout, type CounterFeature, type Scope } from '../features';
import { parseIPv4 } from './addresses';
import { Lane, MAX_BUCKETS, type LanePlan, type LaneStats, type RulePlan, type WindowPlan } from './lane';
import type { RuleSet } from './loader';
import type { CompiledRule, RuleActions } from './rule';
import type { Severity } from './schema';

export interface Condition {
  /** A comparison in the rule's `when`, e.g. `syn >= 30`. */
  expression: string;
  value: number;
  threshold: number;
  holds: boolean;
}

export interface Detection {
  ruleId: string;
  ruleVersion: string;
  title: string;
  description: string;
  severity: Severity;
  mitre: readonly string[];
  tags: readonly string[];
  actions: RuleActions;
  sensor: string;
  scope: Scope;
  /** The rule's group_by, e.g. `src` or `src_prefix/24`. */
  groupBy: string;
  /** The address or prefix that fired, e.g. `198.18.0.66` or `198.18.0.0/24`. */
  key: string;
  when: string;
  windowMs: number;
  forMs: number;
  /** Values of the features `when` names, over the rule's window. */
  features: Record<string, number>;
  conditions: Condition[];
  /** Start of the first window of this episode (wall-clock ms, from the tick's endMs and window length). */
  firstWindowMs: number;
  /** End of the window that was just evaluated. */
  lastWindowMs: number;
  /** The sensor's window id of the tick. */
  window: number;
  /** First detection of this episode (the condition had not been firing for this key). */
  onset: boolean;
  /** Found from a fast-path trip before the window ended (RuleEngine.preview). */
  early?: boolean;
  /** Model detections only: the features that make up most of the anomaly score. */
  explanation?: FeatureContribution[];
}

export interface EngineOptions {
  /** The sensor's window length (`xdp-ids sensor --window-ms`); rule durations are rounded up to it. */
  windowMs?: number;
  /** Keys kept per grouping and sensor; past it the least recently seen are forgotten. */
  maxKeysPerLane?: number;
}

export interface EngineStats {
  sensors: number;
  lanes: (LaneStats & { sensor: string; scope: Scope })[];
}

interface EnginePlan {
  source: LanePlan[];
  destination: LanePlan[];
  /** Counters read from the windows of each scope (what some rule needs). */
  sourceCounters: CounterFeature<SourceWindow>[];
  destinationCounters: CounterFeature<DestinationWindow>[];
  /** Whether any lane of the scope needs addresses parsed (prefix grouping, except lists). */
  sourceParses: boolean;
  destinationParses: boolean;
}

const SWEEP_EVERY_TICKS = 16;

function ticksOf(ms: number, windowMs: number): number {
  return Math.max(1, Math.ceil(ms / windowMs));
}

function windowPlan(rules: CompiledRule[], windowTicks: number, windowMs: number, layout: AnyLayout): WindowPlan {
  const bucketTicks = windowTicks <= MAX_BUCKETS ? 1 : Math.ceil(windowTicks / MAX_BUCKETS);
  const buckets = Math.ceil(windowTicks / bucketTicks);
  const counters = [...new Set(rules.flatMap((r) => r.when.counters))].sort((a, b) => a - b);
  const signature = `${windowTicks}/${bucketTicks}/${counters.join(',')}`;
  return {
    windowTicks, bucketTicks, buckets, counters, vectorLength: layout.vectorLength, secondsIndex: layout.secondsIndex,
    seconds: (windowTicks * windowMs) / 1000, signature,
    rules: rules.map((rule): RulePlan => ({ rule, windowTicks, forTicks: ticksOf(rule.forMs, windowMs), signature: `${rule.id}@${rule.version}/${signature}` })),
  };
}

function plan(ruleSet: RuleSet, windowMs: number): EnginePlan {
  const lanes: Record<Scope, Map<string, CompiledRule[]>> = { source: new Map(), destination: new Map() };
  for (const rule of ruleSet.rules) {
    if (!rule.enabled) continue;
    const signature = `${rule.grouping.text}|${rule.except.entries.join(',')}`;
    const group = lanes[rule.scope].get(signature) ?? [];
    group.push(rule);
    lanes[rule.scope].set(signature, group);
  }
  const lanePlans = (scope: Scope): LanePlan[] => [...lanes[scope]].map(([signature, rules]) => {
    const byWindow = new Map<number, CompiledRule[]>();
    for (const r of rules) {
      const ticks = ticksOf(r.windowMs, windowMs);
      byWindow.set(ticks, [...(byWindow.get(ticks) ?? []), r]);
    }
    const windows = [...byWindow].map(([ticks, rs]) => windowPlan(rs, ticks, windowMs, LAYOUTS[scope]));
    const idleTicks = Math.max(...rules.map((r) => ticksOf(r.windowMs, windowMs) + ticksOf(r.forMs, windowMs)));
    return { grouping: rules[0].grouping, except: rules[0].except.size > 0 ? rules[0].except : undefined, windows, idleTicks, signature };
  });
  const source = lanePlans('source');
  const destination = lanePlans('destination');
  const used = (lp: LanePlan[]) => new Set(lp.flatMap((l) => l.windows.flatMap((w) => w.counters)));
  const parses = (lp: LanePlan[]) => lp.some((l) => l.except || l.grouping.v4Bits !== 32 || l.grouping.v6Bits !== 128);
  const usedSource = used(source);
  const usedDestination = used(destination);
  return {
    source, destination,
    sourceCounters: LAYOUTS.source.counters.filter((c) => usedSource.has(c.index)),
    destinationCounters: LAYOUTS.destination.counters.filter((c) => usedDestination.has(c.index)),
    sourceParses: parses(source), destinationParses: parses(destination),
  };
}

/** One sensor's lanes: sensors see different traffic, so their windows are never summed together. */
class SensorLanes {
  lastTick = -Infinity;

  constructor(readonly source: Lane[], readonly destination: Lane[]) {}

  static build(p: EnginePlan, maxKeys: number, previous?: SensorLanes): SensorLanes {
    const reuse = (plans: LanePlan[], old: Lane[] | undefined) => {
      const bySignature = new Map(old?.map((l) => [l.plan.signature, l]));
      return plans.map((lp) => new Lane(lp, maxKeys, bySignature.get(lp.signature)));
    };
    const lanes = new SensorLanes(reuse(p.source, previous?.source), reuse(p.destination, previous?.destination));
    lanes.lastTick = previous?.lastTick ?? -Infinity;
    return lanes;
  }
}

export class RuleEngine {
  private plan: EnginePlan;
  private readonly sensors = new Map<string, SensorLanes>();
  private readonly windowMs: number;
  private readonly maxKeys: number;
  private readonly sourceRow = new Float64Array(LAYOUTS.source.vectorLength);
  private readonly destinationRow = new Float64Array(LAYOUTS.destination.vectorLength);

  constructor(ruleSet: RuleSet, opts: EngineOptions = {}) {
    this.windowMs = opts.windowMs ?? 1000;
    this.maxKeys = opts.maxKeysPerLane ?? 262_144;
    this.plan = plan(ruleSet, this.windowMs);
  }

  /**
   * Switches to another rule set between two ticks. State carries over where it still means the
   * same thing: keys of unchanged groupings, sums of unchanged windows, streaks of unchanged rules.
   */
  setRules(ruleSet: RuleSet): void {
    this.plan = plan(ruleSet, this.windowMs);
    for (const [sensor, lanes] of this.sensors) this.sensors.set(sensor, SensorLanes.build(this.plan, this.maxKeys, lanes));
  }

  process(tick: SensorTick): Detection[] {
    let lanes = this.sensors.get(tick.sensor);
    // A window id that goes back means a restarted clock (a reboot): nothing before it is comparable.
    if (!lanes || tick.window < lanes.lastTick) {
      lanes = SensorLanes.build(this.plan, this.maxKeys);
      this.sensors.set(tick.sensor, lanes);
    }
    const t = tick.window;
    const p = this.plan;
    const detections: Detection[] = [];
    if (lanes.source.length > 0) {
      for (const lane of lanes.source) lane.beginTick(t);
      this.addSources(tick.sources, lanes.source, p);
    }
    if (lanes.destination.length > 0) {
      for (const lane of lanes.destination) lane.beginTick(t);
      this.addDestinations(tick.destinations, lanes.destination, p);
    }
    for (const lane of [...lanes.source, ...lanes.destination]) {
      lane.evaluate((rule, key, vector, streakStart, onset) => detections.push(this.detection(tick.sensor, tick.window, tick.endMs, rule, key, vector, streakStart, onset)));
    }
    if (Math.floor(t / SWEEP_EVERY_TICKS) !== Math.floor(lanes.lastTick / SWEEP_EVERY_TICKS)) {
      for (const lane of [...lanes.source, ...lanes.destination]) lane.sweep();
    }
    lanes.lastTick = t;
    return detections;
  }

  /**
   * The episodes that source window `sofar` (counts of window `window` so far, e.g. from a trip)
   * would start if the window ended now. Changes no state: the tick itself is processed as usual.
   */
  preview(sensor: string, window: number, sofar: SourceWindow, nowMs: number): Detection[] {
    let lanes = this.sensors.get(sensor);
    if (!lanes) {
      lanes = SensorLanes.build(this.plan, this.maxKeys);
      this.sensors.set(sensor, lanes);
    }
    if (window <= lanes.lastTick) return [];
    const row = this.sourceRow;
    for (const c of this.plan.sourceCounters) row[c.index] = c.read(sofar);
    const v4 = parseIPv4(sofar.src);
    const detections: Detection[] = [];
    for (const lane of lanes.source) {
      lane.preview(sofar.src, v4, row, window, (rule, key, vector, streakStart) => {
        detections.push({ ...this.detection(sensor, window, nowMs, rule, key, vector, streakStart, true), early: true });
      });
    }
    return detections;
  }

  stats(): EngineStats {
    const lanes: EngineStats['lanes'] = [];
    for (const [sensor, l] of this.sensors) {
      for (const lane of l.source) lanes.push({ sensor, scope: 'source', ...lane.stats() });
      for (const lane of l.destination) lanes.push({ sensor, scope: 'destination', ...lane.stats() });
    }
    return { sensors: this.sensors.size, lanes };
  }

  private addSources(windows: readonly SourceWindow[], lanes: Lane[], p: EnginePlan): void {
    const row = this.sourceRow;
    const counters = p.sourceCounters;
    for (let i = 0; i < windows.length; i++) {
      const w = windows[i];
      for (let c = 0; c < counters.length; c++) row[counters[c].index] = counters[c].read(w);
      const v4 = p.sourceParses ? parseIPv4(w.src) : -1;
      for (let l = 0; l < lanes.length; l++) lanes[l].add(w.src, v4, row);
    }
  }

  private addDestinations(windows: readonly DestinationWindow[], lanes: Lane[], p: EnginePlan): void {
    const row = this.destinationRow;
    const counters = p.destinationCounters;
    for (let i = 0; i < windows.length; i++) {
      const w = windows[i];
      for (let c = 0; c < counters.length; c++) row[counters[c].index] = counters[c].read(w);
      const v4 = p.destinationParses ? parseIPv4(w.dst) : -1;
      for (let l = 0; l < lanes.length; l++) lanes[l].add(w.dst, v4, row);
    }
  }

  private detection(sensor: string, window: number, endMs: number, plan: RulePlan, key: string, vector: Float64Array, streakStart: number, onset: boolean): Detection {
    const rule = plan.rule;
    const features: Record<string, number> = {};
    for (const f of rule.when.features) features[f.name] = featureValue(f, vector);
    const conditions = rule.when.comparisons.map((c) => ({ expression: c.text, value: c.left(vector), threshold: c.right(vector), holds: c.holds(vector) }));
    return {
      ruleId: rule.id, ruleVersion: rule.version, title: rule.title, description: rule.description, severity: rule.severity, mitre: rule.mitre, tags: rule.tags,
      actions: rule.actions, sensor, scope: rule.scope, groupBy: rule.grouping.text, key, when: rule.when.source,
      windowMs: rule.windowMs, forMs: rule.forMs, features, conditions,
      firstWindowMs: endMs - (window - streakStart + plan.windowTicks) * this.windowMs, lastWindowMs: endMs,
      window, onset,
    };
  }
}
