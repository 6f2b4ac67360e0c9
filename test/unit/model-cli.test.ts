/** `xdp-ids model train|info|evaluate` through commander, on record files of the fixed dataset. */
import { Command } from 'commander';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { registerModelCommands } from '../../detector/model/cli';
import { seededRandom } from '../../detector/model/random';
import { benignTicks, tickOf, windowOf } from './model-support';

async function run(args: string[]): Promise<string> {
  let out = '';
  const program = new Command('xdp-ids').exitOverride().configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (out += s) });
  registerModelCommands(program);
  await program.parseAsync(['node', 'xdp-ids', ...args]);
  return out;
}

describe('model CLI', () => {
  let dir: string;
  const write = (name: string, lines: unknown[]) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
    return file;
  };

  beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-model-cli-'))));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('train saves a model that info describes and evaluate measures', async () => {
    const train = write('train.jsonl', benignTicks(1, 40));
    const benign = write('benign.jsonl', benignTicks(2, 20, 40, 100));
    const random = seededRandom(4);
    const attack = write('attack.jsonl', Array.from({ length: 3 }, (_, i) => tickOf(200 + i, [windowOf('198.18.9.250', 'scan', random), windowOf('198.18.9.251', 'null-scan', random)])));
    const models = path.join(dir, 'models');

    const trained = await run(['model', 'train', '--from', train, '--out', models, '--seed', '5', '--epochs', '30']);
    expect(trained).toMatch(/^saved .*model-\d{8}T\d{9}Z-s5\n/);
    expect(trained).toContain('1600 source-windows from unit');

    const info = await run(['model', 'info', '--model', models]);
    expect(info).toMatch(/schema {5}source-window\/v4 \(68 features/);
    expect(info).toMatch(/\n {2}mid  >= 4 packets\/s +\d/);
    expect(info).toContain(`files      ${train}`);

    const evaluation = JSON.parse(await run(['model', 'evaluate', '--model', models, '--benign', benign, '--attack', attack, '--json']));
    expect(evaluation.benign.windows).toBe(800);
    expect(evaluation.benign.falsePositivesPerWindow).toBeLessThan(0.01);
    expect(evaluation.attack).toMatchObject({ windows: 6, sources: 2, sourcesDetected: 2, detectedShare: 1 });
    expect(await run(['model', 'evaluate', '--model', models, '--benign', benign, '--attack', attack])).toMatch(/attack {2}6 windows from 2 sources: \d+ over the threshold; 2 sources detected \(100.0 %\)/);
  });

  test('errors: no model, a bad record line, k above n', async () => {
    await expect(run(['model', 'info', '--model', path.join(dir, 'empty')])).rejects.toThrow(/no model found/);
    const bad = write('bad.jsonl', [{ sensor: 's', iface: 'i', window: 1, startMs: 0, endMs: 1000, sources: [{ src: 'x' }] }]);
    await expect(run(['model', 'train', '--from', bad, '--out', path.join(dir, 'm2')])).rejects.toThrow(`${bad}:1: sources.0.packets`);
    await expect(run(['model', 'evaluate', '--benign', bad, '--attack', bad, '--k', '6', '--n', '5'])).rejects.toThrow(/--k 6 is more than --n 5/);
  });
});
