import type { Sample, SensorSink, SensorTick, SourceWindow, Trip } from '../../common/sensor-tick';

/** A SensorSink that keeps everything, for assertions. */
export class CollectingSink implements SensorSink {
  readonly ticks: SensorTick[] = [];
  readonly trips: Trip[] = [];
  readonly samples: Sample[] = [];

  tick(t: SensorTick): void {
    this.ticks.push(t);
  }

  trip(t: Trip): void {
    this.trips.push(t);
  }

  sample(s: Sample): void {
    this.samples.push(s);
  }

  /** Sum of a source's windows over all ticks so far. */
  totals(src: string): Omit<SourceWindow, 'src' | 'firstSeenMs'> & { windows: number } {
    const out = { windows: 0 } as Omit<SourceWindow, 'src' | 'firstSeenMs'> & { windows: number };
    for (const w of this.ticks.flatMap((t) => t.sources).filter((s) => s.src === src)) {
      out.windows++;
      for (const [k, v] of Object.entries(w)) {
        if (typeof v === 'number' && k !== 'firstSeenMs') (out as unknown as Record<string, number>)[k] = ((out as unknown as Record<string, number>)[k] ?? 0) + v;
      }
    }
    return out;
  }

  /** Resolves after `n` more ticks. */
  async nextTicks(n: number, timeoutMs = 10_000): Promise<void> {
    const target = this.ticks.length + n;
    const deadline = Date.now() + timeoutMs;
    while (this.ticks.length < target) {
      if (Date.now() > deadline) throw new Error(`no sensor tick within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
