/**
 * A model on disk: one directory per model, holding TF.js's own layers-model format (model.json
 * with the topology and the weights manifest, weights.bin), written and read through TF.js IO
 * handlers. Our metadata (schema, normalisation, threshold, training) rides in model.json's
 * `userDefinedMetadata.xdpIds`. A model directory is written under a temporary name and renamed
 * into place, so a watcher never sees half a model. Loading validates everything and names what
 * is wrong.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { AnomalyModel, MODEL_FORMAT, type ModelMeta } from './anomaly-model';
import { networkOf } from './autoencoder';
import { SCHEMA_ID, schemaMismatch } from './schema';
import { FEATURE_COUNT } from './source-features';
import { VOLUME_BANDS } from './volume-bands';
import { tensorflow } from './tf-backend';
import type { LayersModel } from './tfjs';
import type { TrainedModel } from './train';

export const MODEL_FILE = 'model.json';
const WEIGHTS_FILE = 'weights.bin';

export class ModelFileError extends Error {
  constructor(readonly dir: string, problem: string) {
    super(`model ${dir}: ${problem}`);
    this.name = 'ModelFileError';
  }
}

const finite = z.number().refine(Number.isFinite, 'must be a finite number');
const features = z.array(finite).length(FEATURE_COUNT);
const threshold = z.object({ value: finite.refine((v) => v > 0, 'must be > 0') }).loose();

const metaSchema = z.object({
  format: z.literal(MODEL_FORMAT),
  schema: z.object({
    id: z.string(),
    features: z.array(z.object({ name: z.string(), transform: z.literal('log1p') })),
    halfLivesS: z.array(finite),
  }),
  normalisation: z.object({ mean: features, scale: z.array(finite.refine((v) => v > 0, 'must be > 0')).length(FEATURE_COUNT) }),
  thresholds: z.object({
    bands: z.array(z.object({ band: z.string(), minPps: finite, threshold }).loose()).length(VOLUME_BANDS.length)
      .refine((bands) => bands.every((b, i) => b.band === VOLUME_BANDS[i].name && b.minPps === VOLUME_BANDS[i].minPps),
        `must be this build's volume bands (${VOLUME_BANDS.map((b) => `${b.name} from ${b.minPps} packets/s`).join(', ')})`),
    pooled: threshold,
  }).loose(),
  training: z.object({ trainedAtMs: finite, seed: finite }).loose(),
  weightsSha256: z.string().regex(/^[0-9a-f]{64}$/),
}).loose();

const weightSpec = z.object({ name: z.string(), shape: z.array(z.number().int().nonnegative()), dtype: z.literal('float32') }).loose();

const modelJsonSchema = z.object({
  format: z.literal('layers-model'),
  modelTopology: z.record(z.string(), z.unknown()),
  weightsManifest: z.array(z.object({ paths: z.array(z.string()).length(1), weights: z.array(weightSpec) })).length(1),
  userDefinedMetadata: z.object({ xdpIds: metaSchema }),
}).loose();

function problemText(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).slice(0, 3).join('; ');
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function compactTime(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace('.', '');
}

/** Writes a trained model into a new directory under `parentDir`; returns the model as loaded from there. */
export async function saveModel(trained: TrainedModel, parentDir: string): Promise<AnomalyModel> {
  const { tf } = await tensorflow();
  const meta = trained.model.meta;
  const name = `model-${compactTime(meta.training.trainedAtMs)}-s${meta.training.seed}`;
  const finalDir = path.join(parentDir, name);
  if (fs.existsSync(finalDir)) throw new ModelFileError(finalDir, 'already exists');
  fs.mkdirSync(parentDir, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(parentDir, `.${name}.tmp-`));
  try {
    await trained.tfModel.save(tf.io.withSaveHandler(async (artifacts) => {
      const weights = new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData));
      const saved: ModelMeta = { ...meta, weightsSha256: sha256(weights) };
      const json = {
        format: 'layers-model',
        generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
        convertedBy: null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs }],
        userDefinedMetadata: { xdpIds: saved },
      };
      fs.writeFileSync(path.join(tmp, WEIGHTS_FILE), weights);
      fs.writeFileSync(path.join(tmp, MODEL_FILE), `${JSON.stringify(json, null, 1)}\n`);
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: weights.byteLength } };
    }));
    fs.renameSync(tmp, finalDir);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return (await loadModel(finalDir)).model;
}

/** The metadata of a model directory without loading its weights (for ordering and `model info`). */
export function readModelMeta(dir: string): ModelMeta {
  const file = path.join(dir, MODEL_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ModelFileError(dir, `cannot read ${MODEL_FILE}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ModelFileError(dir, `${MODEL_FILE} is not JSON: ${(err as Error).message}`);
  }
  // Older models first hear that they are older (rather than which field a newer one has).
  const saved = (json as { userDefinedMetadata?: { xdpIds?: Partial<ModelMeta> } } | null)?.userDefinedMetadata?.xdpIds;
  if (saved?.schema?.id !== undefined && saved.schema.id !== SCHEMA_ID) {
    throw new ModelFileError(dir, `feature schema ${JSON.stringify(saved.schema.id)} is not this build's ${SCHEMA_ID}; retrain it with this build (xdp-ids model train)`);
  }
  if (saved?.format !== undefined && saved.format !== MODEL_FORMAT) {
    throw new ModelFileError(dir, `model format ${JSON.stringify(saved.format)} is not this build's ${MODEL_FORMAT}; retrain it with this build (xdp-ids model train)`);
  }
  const parsed = modelJsonSchema.safeParse(json);
  if (!parsed.success) throw new ModelFileError(dir, `${MODEL_FILE} is not an xdp-ids model: ${problemText(parsed.error)}`);
  const meta = parsed.data.userDefinedMetadata.xdpIds as unknown as ModelMeta;
  const mismatch = schemaMismatch(meta.schema);
  if (mismatch) throw new ModelFileError(dir, `${mismatch}; retrain it with this build (xdp-ids model train)`);
  return meta;
}

/** Loads and checks a model directory: metadata, schema, weights checksum and sizes, topology, finite weights. */
export async function loadModel(dir: string): Promise<{ model: AnomalyModel; tfModel: LayersModel }> {
  const meta = readModelMeta(dir);
  const json = JSON.parse(fs.readFileSync(path.join(dir, MODEL_FILE), 'utf8')) as z.infer<typeof modelJsonSchema>;
  const [{ paths: [weightsPath], weights: specs }] = json.weightsManifest;
  if (path.basename(weightsPath) !== weightsPath) throw new ModelFileError(dir, `weights path ${JSON.stringify(weightsPath)} must be a file name in the model directory`);
  let weights: Buffer;
  try {
    weights = fs.readFileSync(path.join(dir, weightsPath));
  } catch (err) {
    throw new ModelFileError(dir, `cannot read weights: ${(err as Error).message}`);
  }
  const expectedBytes = specs.reduce((sum, s) => sum + 4 * s.shape.reduce((a, b) => a * b, 1), 0);
  if (weights.byteLength !== expectedBytes) throw new ModelFileError(dir, `${weightsPath} has ${weights.byteLength} bytes, the manifest describes ${expectedBytes}`);
  if (sha256(weights) !== meta.weightsSha256) throw new ModelFileError(dir, `${weightsPath} does not match its checksum in ${MODEL_FILE} (damaged or replaced)`);
  const { tf } = await tensorflow();
  let tfModel: LayersModel;
  try {
    const weightData = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) as ArrayBuffer;
    tfModel = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: specs as never, weightData }));
  } catch (err) {
    throw new ModelFileError(dir, `TF.js cannot load it: ${(err as Error).message}`);
  }
  try {
    return { model: new AnomalyModel(path.basename(dir), meta, networkOf(tfModel)), tfModel };
  } catch (err) {
    tfModel.dispose();
    throw new ModelFileError(dir, (err as Error).message);
  }
}

export interface ModelCandidate {
  dir: string;
  /** model.json's mtime: a model rewritten in place is a new candidate. */
  version: string;
  trainedAtMs: number;
  /** Why its metadata cannot be used (the candidate sorts last). */
  error?: string;
}

/** The model directories in `dir` (or `dir` itself when it is one), newest training first. */
export function modelCandidates(dir: string): ModelCandidate[] {
  const found: ModelCandidate[] = [];
  for (const d of modelDirs(dir)) {
    let version: string;
    try {
      version = `${d}@${fs.statSync(path.join(d, MODEL_FILE)).mtimeMs}`;
    } catch {
      continue; // removed while scanning
    }
    try {
      found.push({ dir: d, version, trainedAtMs: readModelMeta(d).training.trainedAtMs });
    } catch (err) {
      found.push({ dir: d, version, trainedAtMs: -Infinity, error: (err as Error).message });
    }
  }
  return found.sort((a, b) => b.trainedAtMs - a.trainedAtMs || b.dir.localeCompare(a.dir));
}

/** Loads the newest model in `dir` that is valid; throws naming every one that is not. */
export async function loadNewestModel(dir: string): Promise<{ model: AnomalyModel; tfModel: LayersModel }> {
  const problems: string[] = [];
  for (const c of modelCandidates(dir)) {
    if (c.error) {
      problems.push(c.error);
      continue;
    }
    try {
      return await loadModel(c.dir);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  throw new ModelFileError(dir, problems.length === 0 ? 'no model found (train one with xdp-ids model train)' : `no valid model: ${problems.join('; ')}`);
}

function modelDirs(dir: string): string[] {
  if (fs.existsSync(path.join(dir, MODEL_FILE))) return [dir];
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.filter((e) => e.isDirectory() && !e.name.startsWith('.') && fs.existsSync(path.join(dir, e.name, MODEL_FILE))).map((e) => path.join(dir, e.name));
}
