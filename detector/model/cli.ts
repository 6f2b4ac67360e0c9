/**
 * `xdp-ids model record|train|evaluate|info`: record window files from a sensor, train a model
 * from them, measure it on benign and attack recordings, and show what a model is. Results go to
 * stdout; logs to stderr.
 */
import { Command, InvalidArgumentError } from 'commander';
import path from 'node:path';
import { createLogger } from '../../common/log';
import { Sensor } from '../../sensor/daemon';
import { parseDuration } from '../rules/durations';
import type { ModelMeta } from './anomaly-model';
import { evaluateModel, type Evaluation } from './evaluate';
import { loadNewestModel, saveModel } from './files';
import { readWindows, recordWindows } from './records';
import { TickStream } from './tick-stream';
import { trainModel } from './train';

/** Where models live unless --model/--out says otherwise. */
export function defaultModelDir(): string {
  return process.env.XDP_IDS_MODEL_DIR ?? '/var/lib/xdp-ids/models';
}

function integer(min: number, max: number): (text: string) => number {
  return (text) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    return n;
  };
}

function probability(text: string): number {
  const p = Number(text);
  if (!(p > 0 && p < 1)) throw new InvalidArgumentError('must be a number between 0 and 1');
  return p;
}

function duration(text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined || ms === 0) throw new InvalidArgumentError('must be a duration such as 30s, 10m or 1h');
  return ms;
}

export function describeModel(id: string, meta: ModelMeta): string {
  const t = meta.training;
  const pooled = meta.thresholds.pooled;
  const bands = meta.thresholds.bands.map((b) => {
    const th = b.threshold;
    const fit = b.fittedTo === 'band'
      ? `tail shape ${th.shape.toFixed(2)} above the ${th.tailQuantile.toPrecision(3)} quantile, fit ${th.estimate.toPrecision(3)}, ${th.calibrationOver} over it`
      : 'too few for a fit of its own: the pooled threshold or its highest error';
    return `  ${b.band.padEnd(4)} ${`>= ${b.minPps} packets/s`.padEnd(16)} ${th.value.toPrecision(4).padStart(9)}  (${b.windows} windows; ${fit})`;
  });
  return [
    `model      ${id}`,
    `schema     ${meta.schema.id} (${meta.schema.features.length} features, history half-lives ${meta.schema.halfLivesS.join(', ')} s)`,
    `network    ${meta.schema.features.length} → ${t.hiddenUnits.join(' → ')} → ${meta.schema.features.length} (TF.js ${t.backend})`,
    `trained    ${new Date(t.trainedAtMs).toISOString()} in ${(t.durationMs / 1000).toFixed(1)} s, seed ${t.seed}, ${t.epochs} epochs, final loss ${t.finalLoss.toFixed(5)}`,
    `data       ${t.windows} source-windows from ${t.sensors.join(', ')} (${new Date(t.fromMs).toISOString()} to ${new Date(t.toMs).toISOString()}); all fitted, ${t.calibrationWindows} (all but the cold starts) scored out of ${t.folds} folds for the thresholds`,
    `thresholds per traffic volume: generalised Pareto tails of out-of-fold errors for ${pooled.targetExceedance} of benign windows, upper ${pooled.confidence} bounds over ${pooled.resamples} block-bootstrap resamples`,
    ...bands,
    `  all  ${''.padEnd(16)} ${pooled.value.toPrecision(4).padStart(9)}  (${pooled.calibrationWindows} windows in ${pooled.calibrationBlocks} blocks; errors p50 ${pooled.quantiles.p50.toPrecision(3)}, p99 ${pooled.quantiles.p99.toPrecision(3)}, p99.9 ${pooled.quantiles.p999.toPrecision(3)}, max ${pooled.quantiles.max.toPrecision(3)})`,
    ...(t.files.length > 0 ? [`files      ${t.files.join(', ')}`] : []),
  ].join('\n');
}

export function describeEvaluation(e: Evaluation): string {
  const median = (xs: number[]) => (xs.length === 0 ? NaN : [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]);
  return [
    `model ${e.model}, thresholds ${e.thresholds.map((t) => `${t.band} ${t.value.toPrecision(4)}`).join(', ')}, anomaly = ${e.k} of ${e.n} windows over their band's`,
    `benign  ${e.benign.windows} windows from ${e.benign.sources} sources: ${e.benign.windowsOver} over the threshold, ${e.benign.detections} detections = ${e.benign.falsePositivesPerWindow.toExponential(2)} false positives per window; ${e.benign.sourcesDetected} sources flagged`,
    `attack  ${e.attack.windows} windows from ${e.attack.sources} sources: ${e.attack.windowsOver} over the threshold; ${e.attack.sourcesDetected} sources detected (${(100 * e.attack.detectedShare).toFixed(1)} %), median delay ${(median(e.attack.delaysMs) / 1000).toFixed(1)} s`,
    `speed   ${Math.round(e.windowsScoredPerSecond)} windows/s scored (features, network, persistence)`,
  ].join('\n');
}

export function registerModelCommands(program: Command): Command {
  const model = program.command('model').description(`record windows, train, evaluate and inspect the anomaly model (models in ${defaultModelDir()}, or XDP_IDS_MODEL_DIR)`);
  const write = (cmd: Command, text: string) => cmd.configureOutput().writeOut?.(`${text}\n`);

  model.command('record')
    .description('run a sensor on an interface and write its windows to a file (JSON lines), for training and evaluation')
    .requiredOption('--duration <d>', 'how long to record, e.g. 10m', duration)
    .requiredOption('--out <file>', 'record file (appended to)')
    .requiredOption('--iface <if>', 'interface to attach the sensor to')
    .option('--window-ms <ms>', 'window length', integer(100, 60_000), 1000)
    .action(async function (this: Command, opts: { duration: number; out: string; iface: string; windowMs: number }) {
      const log = createLogger('model-record');
      const stream = new TickStream();
      const sensor = Sensor.start({ iface: opts.iface, windowMs: opts.windowMs, pin: false }, stream, log);
      try {
        const written = await recordWindows(stream, opts.out, opts.duration);
        write(this, `${written.ticks} windows (${written.windows} source-windows) written to ${opts.out}${stream.dropped ? `; ${stream.dropped} ticks dropped (writer too slow)` : ''}`);
      } finally {
        sensor.stop();
      }
    });

  model.command('train')
    .description('train a model on recorded benign windows and save it as a new directory under --out')
    .requiredOption('--from <files...>', 'record files (from model record) of normal traffic')
    .option('--out <dir>', 'model directory', defaultModelDir())
    .option('--seed <n>', 'random seed (same seed and data, same model)', integer(0, 2 ** 31 - 1), 1)
    .option('--epochs <n>', 'training epochs (default: enough for about 3000 steps)', integer(1, 10_000))
    .option('--target-exceedance <p>', 'share of benign windows over the threshold', probability)
    .action(async function (this: Command, opts: { from: string[]; out: string; seed: number; epochs?: number; targetExceedance?: number }) {
      const log = createLogger('model-train');
      const trained = await trainModel(readWindows(opts.from), { seed: opts.seed, epochs: opts.epochs, targetExceedance: opts.targetExceedance, files: opts.from.map((f) => path.resolve(f)), log });
      const saved = await saveModel(trained, opts.out);
      write(this, `saved ${path.join(opts.out, saved.id)}\n${describeModel(saved.id, saved.meta)}`);
    });

  model.command('evaluate')
    .description('score recorded benign and attack windows: false positives per benign window, attack sources detected and delay')
    .option('--model <path>', 'a model directory, or a directory of models (the newest valid one)', defaultModelDir())
    .requiredOption('--benign <files...>', 'record files of normal traffic not used for training')
    .requiredOption('--attack <files...>', 'record files whose every source is an attacker')
    .option('--k <k>', 'windows over the threshold needed among the last n', integer(1, 32), 3)
    .option('--n <n>', 'windows considered', integer(1, 32), 5)
    .option('--json', 'print the evaluation as JSON')
    .action(async function (this: Command, opts: { model: string; benign: string[]; attack: string[]; k: number; n: number; json?: boolean }) {
      if (opts.k > opts.n) throw new InvalidArgumentError(`--k ${opts.k} is more than --n ${opts.n}`);
      const { model: m, tfModel } = await loadNewestModel(opts.model);
      tfModel.dispose();
      const evaluation = await evaluateModel(m, opts.benign, opts.attack, opts.k, opts.n);
      write(this, opts.json ? JSON.stringify(evaluation) : describeEvaluation(evaluation));
    });

  model.command('info')
    .description('describe a model: schema, network, training data, threshold')
    .option('--model <path>', 'a model directory, or a directory of models (the newest valid one)', defaultModelDir())
    .action(async function (this: Command, opts: { model: string }) {
      const { model: m, tfModel } = await loadNewestModel(opts.model);
      tfModel.dispose();
      write(this, describeModel(m.id, m.meta));
    });
  return model;
}
