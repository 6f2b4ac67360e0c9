/**
 * Window-edge augmentation for training. A sensor's window edge falls wherever it falls, and now
 * and then it cuts a source's traffic in two: the demo's web client that sends six packets a
 * second came out as a window of two (its SYN and ACK) and one of four, and the window after
 * still carried the cut in its history. A baseline of a minute holds a handful of such cuts, too
 * few to learn, and the model found each one anomalous (twice a false alarm in the demo: once a
 * single window far over the threshold, once three windows in a row just over it). So training
 * also sees cuts made on purpose: for a share of the sources present in two consecutive ticks, a
 * random part of the first window's counts is moved into the second, as a later edge would have.
 */
import type { SensorTick, SourceWindow } from '../../common/sensor-tick';
import { LAYOUTS } from '../features';

/** Counts of distinct things (ports, hosts, protocols) stay: both windows still saw them. */
const MOVABLE = LAYOUTS.source.counters.filter((c) => !c.name.startsWith('distinct_')).map((c) => c.field);

/** Copies of `earlier` and `later` with part of `earlier`'s packets (at least one, never all) and the same share of its other counts moved to `later`. */
function recut(earlier: SourceWindow, later: SourceWindow, random: () => number): [SourceWindow, SourceWindow] {
  const movedPackets = Math.min(earlier.packets - 1, Math.max(1, Math.round(earlier.packets * (0.2 + 0.6 * random()))));
  const share = movedPackets / earlier.packets;
  const a = { ...earlier };
  const b = { ...later };
  for (const field of MOVABLE) {
    const moved = field === 'packets' ? movedPackets : Math.round(a[field] * share);
    a[field] -= moved;
    b[field] += moved;
  }
  return [a, b];
}

/**
 * `earlier` and `later` (consecutive ticks of one sensor) with a `share` of the sources they have
 * in common re-cut; the ticks themselves are not changed.
 */
export function recutEdges(earlier: SensorTick, later: SensorTick, share: number, random: () => number): [SensorTick, SensorTick] {
  if (earlier.sensor !== later.sensor || later.window !== earlier.window + 1) return [earlier, later];
  const next = new Map(later.sources.map((w, i) => [w?.src, i]));
  let a: SourceWindow[] | undefined;
  let b: SourceWindow[] | undefined;
  earlier.sources.forEach((w, i) => {
    const j = w ? next.get(w.src) : undefined;
    if (j === undefined || !(w.packets >= 2) || random() >= share) return;
    a ??= [...earlier.sources];
    b ??= [...later.sources];
    [a[i], b[j]] = recut(w, b[j], random);
  });
  return a && b ? [{ ...earlier, sources: a }, { ...later, sources: b }] : [earlier, later];
}
