/**
 * The model's feature schema: what the autoencoder sees of one source-window. Features are rule
 * features (detector/features.ts) or a few model-only ones derived from the same counters, either
 * over the window itself or over the source's recent history (its counter vectors summed with an
 * exponential decay of the given half-life, derived features recomputed from those sums, as rules
 * do over their windows), then log1p-scaled: counts span orders of magnitude, and a scan differs
 * from a client by factors, not by offsets.
 *
 * A saved model records the schema's id; a model trained on another schema is refused. Change the
 * id whenever a feature, its order, a half-life or a transform changes.
 */
import { LAYOUTS, findFeature, featuresOf, type DerivedFeature, type Feature } from '../features';

export const SCHEMA_ID = 'source-window/v4';

/**
 * What a history holds, per second the source was active (decayed sums of counts divided by the
 * decayed sum of its windows' seconds), and ratios. Not the decayed sums themselves: they grow
 * with a source's age until several half-lives have passed, so a model learnt in a minute (the
 * demo learns in 40 s) would find every client that has stayed for ten minutes unlike anything
 * it learnt (v3 did; its 60 s sums of a steady client were 2.7 times those of its training).
 */
const RATES_AND_RATIOS = [
  'pps', 'bps', 'syn_per_s', 'ack_per_s', 'rst_per_s', 'fin_per_s', 'udp_per_s', 'icmp_per_s', 'odd_flags_per_s',
  'ports_per_s', 'hosts_per_s', 'ack_per_syn', 'rst_per_syn', 'syn_per_ack', 'avg_packet_bytes',
] as const;

/**
 * Over 300 s only what tells probing from use: each feature repeated at another time scale also
 * repeats the error of any odd benign window, so the list is short.
 */
const PROBING_RATIOS = ['syn_per_ack', 'ports_per_s', 'hosts_per_s'] as const;

/**
 * Half-lives (seconds) of the decayed histories and what is read over each: 5 s for bursts, 60 s
 * and 300 s for slow scans, whose windows each look like a client's but whose SYNs, summed over
 * minutes, are never acknowledged.
 */
export const HISTORIES: readonly { halfLifeS: number; features: readonly string[] }[] = [
  { halfLifeS: 5, features: RATES_AND_RATIOS },
  { halfLifeS: 60, features: RATES_AND_RATIOS },
  { halfLifeS: 300, features: PROBING_RATIOS },
];

export const HALF_LIVES_S: readonly number[] = HISTORIES.map((h) => h.halfLifeS);

const COUNTER = Object.fromEntries(LAYOUTS.source.counters.map((c) => [c.name, c.index]));
const SECONDS = LAYOUTS.source.secondsIndex;

function derived(name: string, unit: string, meaning: string, formula: string, inputs: string[], compute: (v: Float64Array) => number): DerivedFeature {
  return { kind: 'derived', name, scope: 'source', unit, meaning, formula, inputs: inputs.map((i) => COUNTER[i]), compute };
}

/** Derived features only the model reads: rules can say the same with their own expressions. */
const MODEL_ONLY: readonly DerivedFeature[] = [
  derived('syn_per_ack', 'ratio', 'SYNs per ACK-only packet: a client acknowledges every connection it opens several times; a scan or flood never does', 'syn / max(ack_only, 1)', ['syn', 'ack_only'],
    (v) => v[COUNTER.syn] / Math.max(v[COUNTER.ack_only], 1)),
  derived('ack_per_s', 'packets/s', 'ACK-only packets per second', 'ack_only / seconds', ['ack_only'], (v) => v[COUNTER.ack_only] / v[SECONDS]),
  derived('fin_per_s', 'packets/s', 'FIN packets per second', 'fin / seconds', ['fin'], (v) => v[COUNTER.fin] / v[SECONDS]),
  derived('odd_flags_per_s', 'packets/s', 'Stealth-scan probes (NULL, FIN-only, XMAS, SYN+FIN) per second', '(null_scan + fin_only + xmas + syn_fin) / seconds', ['null_scan', 'fin_only', 'xmas', 'syn_fin'],
    (v) => (v[COUNTER.null_scan] + v[COUNTER.fin_only] + v[COUNTER.xmas] + v[COUNTER.syn_fin]) / v[SECONDS]),
  derived('ports_per_s', 'ports/s', 'Distinct destination ports per window, per second of the windows the source was active in', 'distinct_ports / seconds', ['distinct_ports'],
    (v) => v[COUNTER.distinct_ports] / v[SECONDS]),
  derived('hosts_per_s', 'hosts/s', 'Distinct destination hosts per window, per second of the windows the source was active in', 'distinct_hosts / seconds', ['distinct_hosts'],
    (v) => v[COUNTER.distinct_hosts] / v[SECONDS]),
];

const WINDOW_FEATURES = [...featuresOf('source').map((f) => f.name), 'syn_per_ack'];

export type Transform = 'log1p';

export interface ModelFeature {
  /** e.g. `syn` (this window) or `syn@60s` (decayed history with a 60 s half-life). */
  name: string;
  /** The feature it is computed with. */
  definition: Feature;
  /** Index into HISTORIES, or -1 for the window itself. */
  history: number;
  transform: Transform;
}

function feature(name: string, history: number): ModelFeature {
  const definition = findFeature('source', name) ?? MODEL_ONLY.find((f) => f.name === name);
  if (!definition) throw new Error(`model feature ${name} is neither a source feature in detector/features.ts nor a model-only one`);
  const suffix = history < 0 ? '' : `@${HISTORIES[history].halfLifeS}s`;
  return { name: `${name}${suffix}`, definition, history, transform: 'log1p' };
}

export const MODEL_FEATURES: readonly ModelFeature[] = [
  ...WINDOW_FEATURES.map((name) => feature(name, -1)),
  ...HISTORIES.flatMap((h, i) => h.features.map((name) => feature(name, i))),
];

export const FEATURE_NAMES: readonly string[] = MODEL_FEATURES.map((f) => f.name);

/** What a saved model stores of the schema, to check it against this build. */
export interface SchemaDescription {
  id: string;
  features: { name: string; transform: Transform }[];
  halfLivesS: number[];
}

export function describeSchema(): SchemaDescription {
  return { id: SCHEMA_ID, features: MODEL_FEATURES.map((f) => ({ name: f.name, transform: f.transform })), halfLivesS: [...HALF_LIVES_S] };
}

/** Why a saved schema cannot be used with this build, or undefined when it can. */
export function schemaMismatch(saved: SchemaDescription): string | undefined {
  if (saved.id !== SCHEMA_ID) return `feature schema ${JSON.stringify(saved.id)} is not this build's ${SCHEMA_ID}`;
  const names = saved.features.map((f) => `${f.name}:${f.transform}`).join(',');
  const ours = MODEL_FEATURES.map((f) => `${f.name}:${f.transform}`).join(',');
  if (names !== ours) return `feature schema ${SCHEMA_ID} lists different features than this build (saved ${saved.features.length}, here ${MODEL_FEATURES.length})`;
  if (saved.halfLivesS.join(',') !== HALF_LIVES_S.join(',')) return `feature schema half-lives ${saved.halfLivesS.join(',')} s differ from this build's ${HALF_LIVES_S.join(',')} s`;
  return undefined;
}
