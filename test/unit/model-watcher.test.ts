/**
 * ModelWatcher on a real directory: no model → one notice and rules only; a model renamed into
 * place is picked up and swapped in; a newer broken model is reported once and the valid one kept.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AnomalyModel } from '../../detector/model/anomaly-model';
import { saveModel } from '../../detector/model/files';
import { trainModel, type TrainedModel } from '../../detector/model/train';
import { ModelWatcher, type ModelNotice } from '../../detector/model/watcher';
import { quietLogger } from '../support/quiet-logger';
import { benignTicks } from './model-support';

async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('ModelWatcher', () => {
  let dir: string;
  let watcher: ModelWatcher | undefined;
  let first: TrainedModel;
  let second: TrainedModel;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-watch-'));
    first = await trainModel(benignTicks(1, 20), { seed: 1, epochs: 2 });
    second = await trainModel(benignTicks(2, 20), { seed: 2, epochs: 2 });
  });

  afterAll(() => {
    watcher?.close();
    first?.tfModel.dispose();
    second?.tfModel.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a model on its way: no notice while it may still come, one once it is late', async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-watch-late-'));
    const notices: ModelNotice[] = [];
    const late = await ModelWatcher.start({ dir: empty, log: quietLogger, onNotice: (n) => notices.push(n), pollMs: 60_000, missingAfterMs: 400 });
    try {
      await late.reload();
      expect(notices).toEqual([]);
      await until('the missing notice', () => notices.length > 0);
      expect(notices.map((n) => n.code)).toEqual(['model-missing']);
    } finally {
      late.close();
      fs.rmSync(empty, { recursive: true, force: true });
    }
    const coming = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-watch-coming-'));
    const none: ModelNotice[] = [];
    const onTime = await ModelWatcher.start({ dir: coming, log: quietLogger, onNotice: (n) => none.push(n), pollMs: 60_000, missingAfterMs: 1000 });
    try {
      const saved = await saveModel(first, coming);
      await until('the model', () => onTime.current?.id === saved.id);
      await new Promise((r) => setTimeout(r, 1200));
      expect(none).toEqual([]);
    } finally {
      onTime.close();
      fs.rmSync(coming, { recursive: true, force: true });
    }
  });

  test('no model: one notice however often it looks; then models are swapped in as they appear', async () => {
    const notices: ModelNotice[] = [];
    const swapped: AnomalyModel[] = [];
    watcher = await ModelWatcher.start({ dir, log: quietLogger, onNotice: (n) => notices.push(n), onModel: (m) => swapped.push(m), pollMs: 60_000 });
    await watcher.reload();
    await watcher.reload();
    expect(watcher.current).toBeUndefined();
    expect(notices.map((n) => n.code)).toEqual(['model-missing']);

    const saved = await saveModel(first, dir);
    await until('the first model', () => watcher!.current?.id === saved.id);
    expect(swapped.map((m) => m.id)).toEqual([saved.id]);

    const newer = await saveModel(second, dir);
    await until('the newer model', () => watcher!.current?.id === newer.id);
    expect(swapped.map((m) => m.id)).toEqual([saved.id, newer.id]);
    expect(notices.map((n) => n.code)).toEqual(['model-missing']);
  });

  test('a newer broken model is reported once and the valid one kept', async () => {
    const kept = watcher!.current!.id;
    const notices: ModelNotice[] = [];
    watcher!.close();
    watcher = await ModelWatcher.start({ dir, log: quietLogger, onNotice: (n) => notices.push(n), pollMs: 60_000 });
    expect(watcher.current!.id).toBe(kept);
    const broken = path.join(dir, 'model-99999999T000000000Z-s1');
    fs.cpSync(path.join(dir, kept), broken, { recursive: true });
    const json = JSON.parse(fs.readFileSync(path.join(broken, 'model.json'), 'utf8'));
    json.userDefinedMetadata.xdpIds.training.trainedAtMs = Date.now() + 60_000;
    fs.writeFileSync(path.join(broken, 'model.json'), JSON.stringify(json));
    fs.writeFileSync(path.join(broken, 'weights.bin'), 'garbage');
    await watcher.reload();
    await watcher.reload();
    expect(watcher.current!.id).toBe(kept);
    expect(notices).toHaveLength(1);
    expect(notices[0]).toMatchObject({ code: 'model-reload-failed', dir: broken });
    expect(notices[0].message).toMatch(/weights.bin has 7 bytes/);
  });
});
