/** A case's input: a seed with one to three mutations, each structure-aware where the file's kind allows, else byte-level. */
import type { Rand } from '../rand.js';
import type { Sample } from '../sample.js';
import { mutateBytes } from './bytes.js';
import { mutateConfig } from './configs.js';
import { mutateNpy } from './npy.js';
import { mutateSafetensors } from './safetensors.js';
import { mutateZip } from './zip.js';

/** A mutation that makes the case's files larger than this is dropped (the probes cover sheer size). */
const MAX_CASE_BYTES = 8 << 20;

type Mutation = { bytes: Uint8Array; what: string } | undefined;

function structured(r: Rand, name: string, bytes: Uint8Array): Mutation {
  try {
    return byKind(r, name, bytes);
  } catch (e) {
    // A document nested too deep to walk (an earlier mutation's 100,000 brackets): mutate its bytes instead.
    if (e instanceof RangeError) return undefined;
    throw e;
  }
}

function byKind(r: Rand, name: string, bytes: Uint8Array): Mutation {
  if (name.endsWith('.safetensors')) return mutateSafetensors(r, bytes);
  if (name.endsWith('.json')) return mutateConfig(r, bytes);
  if (name.endsWith('.npy')) return mutateNpy(r, bytes);
  if (name.endsWith('.npz')) return mutateZip(r, bytes);
  return undefined;
}

/** Folder-level changes: a file removed, an unexpected one added. */
function folderChange(r: Rand, files: Record<string, Uint8Array>, name: string): string {
  const op = r.below(3);
  if (op === 0) {
    delete files[name];
    return `remove ${name}`;
  }
  const extra = r.pick(['model.safetensors', 'other.safetensors', 'model.safetensors.index.json', 'x.safetensors.index.json', 'adapter_model.bin', 'config.json', 'adapter_config.json']);
  files[extra] = op === 1 ? (files[name] ?? new Uint8Array(0)) : r.pick([new Uint8Array(0), new TextEncoder().encode('{}'), new TextEncoder().encode('{"weight_map":{}}')]);
  return `add ${extra}`;
}

/** The seed mutated; `donors` are other seeds' files to splice from. */
export function mutateSample(r: Rand, seed: Sample, donors: readonly Uint8Array[]): { sample: Sample; mutations: string[] } {
  const files: Record<string, Uint8Array> = { ...seed.files };
  const mutations: string[] = [];
  const count = r.pick([1, 1, 1, 2, 2, 3]);
  for (let k = 0; k < count; k++) {
    const names = Object.keys(files);
    if (names.length === 0) break;
    const name = r.pick(names);
    if (names.length > 1 && r.chance(0.04)) {
      mutations.push(folderChange(r, files, name));
      continue;
    }
    const m = r.chance(0.75) ? structured(r, name, files[name]) : undefined;
    const done = m ?? mutateBytes(r, files[name], donors.length > 0 ? r.pick(donors) : undefined);
    const total = Object.entries(files).reduce((n, [k, b]) => n + (k === name ? done.bytes.length : b.length), 0);
    if (total > MAX_CASE_BYTES) continue;
    files[name] = done.bytes;
    mutations.push(`${name}: ${done.what}`);
  }
  return { sample: { format: seed.format, files }, mutations };
}
