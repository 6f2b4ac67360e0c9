/**
 * The demo's model learner: trains on what its lab's benign hosts sent during the learning time,
 * never on the attacker's windows, into the directory the detector watches; stopped, it saves nothing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadNewestModel } from '../../detector/model/files';
import { DemoModelLearner, learnerLine } from '../../lab/demo-model';
import { seededRandom } from '../../detector/model/random';
import { quietLogger } from '../support/quiet-logger';
import { benignTicks, tickOf, windowOf } from './model-support';

const ATTACKER = '198.18.0.66';

/** Benign ticks with the attacker scanning in every one of them. */
function labTicks(count: number) {
  const random = seededRandom(7);
  return benignTicks(3, count, 30).map((t) => tickOf(t.window, [...t.sources, windowOf(ATTACKER, 'scan', random)]));
}

describe('DemoModelLearner', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-demo-model-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('learns the benign hosts of its learning time, leaving the attacker out', async () => {
    const learner = new DemoModelLearner({ dir, exclude: new Set([ATTACKER]), learnMs: 300, log: quietLogger });
    expect(learnerLine(learner.state())).toMatch(/^anomaly model: learning the lab's normal traffic, (\d0|0)%$/);
    for (const tick of labTicks(40)) learner.tick(tick);
    await learner.done;
    const { model, tfModel } = await loadNewestModel(dir);
    tfModel.dispose();
    expect(model.meta.training.windows).toBe(40 * 30);
    expect(learner.state()).toEqual({ phase: 'ready', model: model.id });
    expect(learnerLine(learner.state())).toBe(`anomaly model: ${model.id} in use`);
  }, 60_000);

  test('stopped while learning, it saves nothing', async () => {
    const learner = new DemoModelLearner({ dir, exclude: new Set([ATTACKER]), learnMs: 60_000, log: quietLogger });
    for (const tick of labTicks(40)) learner.tick(tick);
    learner.stop();
    await learner.done;
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
