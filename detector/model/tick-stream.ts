/**
 * A SensorSink whose ticks can be read with `for await`: how `model record` takes windows from a
 * sensor running in the same process. Trips and samples are not recorded (the model reads
 * windows only). Ticks wait in a bounded buffer; when the reader falls behind the oldest are
 * dropped and counted.
 */
import type { SensorSink, SensorTick } from '../../common/sensor-tick';

export class TickStream implements SensorSink, AsyncIterable<SensorTick> {
  private readonly buffer: SensorTick[] = [];
  private waiting?: (result: IteratorResult<SensorTick>) => void;
  private closed = false;
  dropped = 0;

  constructor(private readonly maxBuffered = 64) {}

  tick(t: SensorTick): void {
    if (this.closed) return;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve({ value: t, done: false });
      return;
    }
    this.buffer.push(t);
    if (this.buffer.length > this.maxBuffered) {
      this.buffer.shift();
      this.dropped++;
    }
  }

  trip(): void {}

  sample(): void {}

  close(): void {
    this.closed = true;
    this.waiting?.({ value: undefined, done: true });
    this.waiting = undefined;
  }

  [Symbol.asyncIterator](): AsyncIterator<SensorTick> {
    return {
      next: () => {
        const t = this.buffer.shift();
        if (t) return Promise.resolve({ value: t, done: false });
        if (this.closed) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => (this.waiting = resolve));
      },
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
