/**
 * The TF.js runtime for training and for checking saved models: tfjs-node's native backend when
 * it happens to be installed (it cannot be installed here: its install downloads a binary), else
 * the wasm backend (2.5× faster than the pure-JS one on this machine for our small dense layers),
 * else the pure-JS CPU backend. All three give the same results up to float rounding; training is
 * deterministic on each.
 */
import { tf, type Tfjs } from './tfjs';

let ready: Promise<string> | undefined;

async function tryBackend(name: string, load: () => void): Promise<boolean> {
  try {
    load();
    return await tf.setBackend(name);
  } catch {
    return false;
  }
}

async function pick(): Promise<string> {
  // PROD silences tfjs's console banner suggesting tfjs-node; logs go through pino only.
  tf.env().set('PROD', true);
  const wanted = process.env.XDP_IDS_TF_BACKEND;
  const candidates: [string, () => void][] = [
    ['tensorflow', () => require('@tensorflow/tfjs-node')],
    ['wasm', () => require('@tensorflow/tfjs-backend-wasm')],
    ['cpu', () => undefined],
  ];
  for (const [name, load] of candidates) {
    if (wanted && wanted !== name) continue;
    if (await tryBackend(name, load)) {
      await tf.ready();
      return name;
    }
  }
  throw new Error(`no usable TF.js backend${wanted ? ` (XDP_IDS_TF_BACKEND=${wanted})` : ''}`);
}

/** TF.js with the best available backend selected; resolves to the backend's name. */
export async function tensorflow(): Promise<{ tf: Tfjs; backend: string }> {
  ready ??= pick();
  return { tf, backend: await ready };
}
