/**
 * Numbers and times as a person reads them in an alert: `312/s` rather than `311.6666666666667`, `5 s`
 * rather than `5.004136962890625s`, `1.1 kbit/s` rather than `1119.0740864065351`. A feature's
 * unit comes from its one definition (detector/features.ts). Only what people read is rounded:
 * the JSON payload keeps every value as it came.
 */
import { findFeature, type Scope } from '../detector/features';

const GROUPED = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** Whole numbers from 10 up (with thousands separators), two significant digits below. */
export function readableNumber(value: number): string {
  if (Number.isNaN(value)) return 'n/a';
  if (!Number.isFinite(value)) return value > 0 ? '∞' : '-∞';
  if (Math.abs(value) >= 10 || Number.isInteger(value)) return GROUPED.format(value);
  return String(Number(value.toPrecision(2)));
}

const SI = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']] as const;

/** `1.1 kbit/s`, `100 Mbit/s`, `54 B`, `1.4 kB`: decimal prefixes, as link speeds and sizes are written. */
function withPrefix(value: number, unit: string): string {
  const [scale, prefix] = SI.find(([s]) => Math.abs(value) >= s) ?? [1, ''];
  return `${readableNumber(value / scale)} ${prefix}${unit}`;
}

/** A value in one of the units features are defined with (`packets/s`, `bits/s`, `bytes`, `ratio`, counts). */
export function readableValue(value: number, unit: string): string {
  if (!Number.isFinite(value)) return readableNumber(value);
  switch (unit) {
    case 'packets/s': return `${readableNumber(value)}/s`;
    case 'bits/s': return withPrefix(value, 'bit/s');
    case 'bytes': return withPrefix(value, 'B');
    default: return readableNumber(value);
  }
}

/** A feature's value by name (a model feature such as `syn@60s` has the unit of `syn`). */
export function readableFeature(scope: Scope, name: string, value: number): string {
  const unit = findFeature(scope, name.split('@')[0])?.unit ?? '';
  return readableValue(value, unit);
}

/** A comparison's value or threshold, in the unit of the first feature the expression names (`syn_per_s >= 300`). */
export function readableComparison(scope: Scope, expression: string, value: number): string {
  const feature = (expression.match(/[a-z_][a-z0-9_]*/g) ?? []).map((name) => findFeature(scope, name)).find((f) => f !== undefined);
  return readableValue(value, feature?.unit ?? '');
}

/** A wall-clock time to the second, in UTC: `2025-01-01T12:00:03Z`; empty when there is none. */
export function readableTime(ms: number | undefined): string {
  return ms === undefined ? '' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** `250 ms`, `5 s`, `1.5 s`, `4 min 30 s`, `2 h 5 min`, `3 d 4 h`. */
export function readableDuration(ms: number): string {
  if (!Number.isFinite(ms)) return readableNumber(ms);
  if (Math.abs(ms) < 1000) return `${Math.round(ms)} ms`;
  if (Math.abs(ms) < 60_000) return `${readableNumber(ms / 1000)} s`;
  const units = [[86_400, 'd'], [3600, 'h'], [60, 'min'], [1, 's']] as const;
  let rest = Math.round(Math.abs(ms) / 1000);
  const parts: string[] = [];
  for (const [size, name] of units) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0) parts.push(`${n} ${name}`);
    if (parts.length === 2 || (parts.length === 1 && n === 0)) break;
  }
  return `${ms < 0 ? '-' : ''}${parts.join(' ')}`;
}
