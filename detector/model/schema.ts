/**
 * The model's feature schema: what the autoencoder sees of one source-window, built from the
 * same definitions the rules use (detector/features.ts). Every feature is a rule feature, either
 * over the window itself or over the source's recent history (its counter vectors summed with an
 * exponential decay of the given half-life, derived features recomputed from those sums, as rules
 * do over their windows), then log1p-scaled: counts span orders of magnitude, and a scan differs
 * from a client by factors, not by offsets.
 *
 * A saved model records the schema's id; a model trained on another schema is refused. Change the
 * id whenever a feature, its order, a half-life or a transform changes.
 */
import { findFeature, featuresOf, type Feature } from '../features';

export const SCHEMA_ID = 'source-window/v1';

/** Half-lives (seconds) of the decayed histories: one for seconds-long bursts, one for slow scans. */
export const HALF_LIVES_S = [5, 60] as const;

/** Rule features also seen over the decayed histories: volume, connection outcome, probe kinds, fan-out. */
const HISTORY_FEATURES = [
  'packets', 'bytes', 'syn', 'ack_only', 'rst', 'fin', 'udp', 'icmp', 'odd_flags',
  'distinct_ports', 'distinct_hosts', 'ack_per_syn', 'rst_per_syn', 'avg_packet_bytes',
] as const;

export type Transform = 'log1p';

export interface ModelFeature {
  /** e.g. `syn` (this window) or `syn@60s` (decayed history with a 60 s half-life). */
  name: string;
  /** The rule feature it is computed with. */
  ruleFeature: Feature;
  /** Index into HALF_LIVES_S, or -1 for the window itself. */
  history: number;
  transform: Transform;
}

function feature(name: string, history: number): ModelFeature {
  const ruleFeature = findFeature('source', name);
  if (!ruleFeature) throw new Error(`model feature ${name} is not a source feature in detector/features.ts`);
  const suffix = history < 0 ? '' : `@${HALF_LIVES_S[history]}s`;
  return { name: `${name}${suffix}`, ruleFeature, history, transform: 'log1p' };
}

export const MODEL_FEATURES: readonly ModelFeature[] = [
  ...featuresOf('source').map((f) => feature(f.name, -1)),
  ...HALF_LIVES_S.flatMap((_, h) => HISTORY_FEATURES.map((name) => feature(name, h))),
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
