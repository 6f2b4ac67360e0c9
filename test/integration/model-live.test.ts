/**
 * The model end to end on real traffic: a sensor on a veth lab records curl clients' windows
 * (model record's path: TickStream → recordWindows → file), a model is trained from the file,
 * saved and loaded back, and then scores the live sensor's ticks while the clients go on and a
 * real nmap -sS scan runs: the scanner is detected, no client is.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SensorSink, SensorTick } from '../../common/sensor-tick';
import { loadNewestModel, saveModel } from '../../detector/model/files';
import { readWindows, recordWindows } from '../../detector/model/records';
import { AnomalyScorer, type ModelDetection } from '../../detector/model/scorer';
import { TickStream } from '../../detector/model/tick-stream';
import { trainModel } from '../../detector/model/train';
import { NetnsLab, type LabHost } from '../../lab/netns';
import { startLabServices, type LabServices } from '../../lab/services';
import { nmap } from '../../lab/traffic';
import { Sensor } from '../../sensor/daemon';
import { quietLogger } from '../support/quiet-logger';

const CLIENTS = 30;

describe('anomaly model on a live lab', () => {
  let lab: NetnsLab;
  let web: LabHost;
  let attacker: LabHost;
  let services: LabServices;
  let sensor: Sensor | undefined;
  let dir: string;
  let clients: string[];
  /** Where the sensor's ticks go: first the recorder, then the scorer. */
  let forward: (t: SensorTick) => void = () => undefined;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-model-live-'));
    lab = new NetnsLab('ximlive', 17).create();
    clients = Array.from({ length: CLIENTS - 1 }, (_, i) => `${lab.v4Prefix}.${11 + i}`);
    web = lab.addHost('web', 10, clients);
    clients.unshift(web.v4);
    attacker = lab.addHost('atk', 66);
    services = await startLabServices(lab);
    const sink: SensorSink = { tick: (t) => forward(t), trip: () => undefined, sample: () => undefined };
    sensor = Sensor.start({ iface: lab.iface, windowMs: 500, pin: false }, sink, quietLogger);
    // Bounded: at most 90 rounds of one request per client (the test needs about 40 s of them).
    lab.spawn(web, ['sh', '-c', `for i in $(seq 90); do for a in ${clients.join(' ')}; do curl -s -o /dev/null -m 2 --interface $a ${services.httpUrl}; done; sleep 0.2; done`]);
  });

  afterAll(async () => {
    sensor?.stop();
    await services?.close();
    lab?.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('trained on recorded curl windows, it flags a real nmap -sS scanner and none of the clients', async () => {
    const stream = new TickStream();
    forward = (t) => stream.tick(t);
    const file = path.join(dir, 'benign.jsonl');
    const recorded = await recordWindows(stream, file, 16_000);
    expect(recorded.windows).toBeGreaterThan(400);

    const trained = await trainModel(readWindows([file]), { seed: 1, epochs: 80, files: [file] });
    await saveModel(trained, path.join(dir, 'models'));
    trained.tfModel.dispose();
    const { model, tfModel } = await loadNewestModel(path.join(dir, 'models'));
    tfModel.dispose();
    expect(model.meta.training.windows).toBe(recorded.windows);

    // Scoring starts while the clients are busy, as after a detector restart: they get the grace
    // time; the scanner starts after it, as a new source does.
    const scorer = new AnomalyScorer(model, { k: 3, n: 4, graceMs: 2000 });
    // Training blocked this process, and with it the lab's web server: requests made meanwhile time
    // out (curl -m 2) and are reset. Real anomalies, but of the harness: score once they are over.
    await new Promise((r) => setTimeout(r, 2500));
    const detections: ModelDetection[] = [];
    const scored = new Set<string>();
    forward = (t) => {
      detections.push(...scorer.score(t));
      for (const s of scorer.lastScores().sources) scored.add(s.src);
    };
    await new Promise((r) => setTimeout(r, 3000));
    await nmap(lab, attacker, '-sS', lab.hostV4, { ports: '1-1000', maxSeconds: 15 });
    await new Promise((r) => setTimeout(r, 3000));
    forward = () => undefined;

    expect(clients.filter((c) => scored.has(c)).length).toBeGreaterThanOrEqual(CLIENTS - 2);
    const flagged = [...new Set(detections.map((d) => d.key))];
    expect(flagged).toEqual([attacker.v4]);
    const onset = detections.find((d) => d.onset)!;
    expect(onset.features.syn).toBeGreaterThan(50);
    expect(onset.explanation.length).toBeGreaterThan(0);
  });
});
