/** Window records: JSON lines round trip, and recordWindows stops at its duration. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SensorTick } from '../../common/sensor-tick';
import { readWindows, recordWindows } from '../../detector/model/records';
import { TickStream } from '../../detector/model/tick-stream';
import { benignTicks } from './model-support';

describe('window records', () => {
  let dir: string;
  beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-rec-'))));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('what recordWindows writes, readWindows reads back unchanged', async () => {
    const ticks = benignTicks(1, 5, 3);
    async function* source(): AsyncGenerator<SensorTick> {
      yield* ticks;
    }
    const file = path.join(dir, 'a.jsonl');
    expect(await recordWindows(source(), file, 10_000)).toEqual({ ticks: 5, windows: 15 });
    const back: SensorTick[] = [];
    for await (const t of readWindows([file, file])) back.push(t);
    expect(back).toEqual([...ticks, ...ticks]);
  });

  test('recording stops after its duration even when no tick comes, and closes the stream', async () => {
    const stream = new TickStream();
    const file = path.join(dir, 'b.jsonl');
    const started = Date.now();
    const recording = recordWindows(stream, file, 300);
    stream.tick(benignTicks(1, 1, 2)[0]);
    expect(await recording).toEqual({ ticks: 1, windows: 2 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    stream.tick(benignTicks(1, 1, 2)[0]);
    expect(fs.readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(1);
  });
});
