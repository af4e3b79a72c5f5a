/**
 * Directed limit probes, run before the random cases: the hostile inputs of issue 16 and their kin
 * (catastrophic regexes in every pattern field, thousands of patterns over thousands of modules,
 * 15,000 method keys, a 99 MB header, an honest deflate bomb, malformed pretty-printed JSON,
 * invalid regexes, allocations sized by a config). Each is built in memory, the big ones streamed.
 */
import { constants, createDeflateRaw } from 'node:zlib';
import { crc32 } from '../src/io/npz.js';
import { patternKey } from '../src/io/peft.js';
import { layoutHeader } from '../src/io/safetensors/header.js';
import { probeHeaderFile } from '../bench/headerProbe.js';
import type { ApiName } from './apis.js';
import { joinNpy } from './mutate/npy.js';
import { buildZip } from './mutate/zip.js';
import type { Format, Sample } from './sample.js';

export interface Probe {
  name: string;
  format: Format;
  build: () => Sample | Promise<Sample>;
  /** What an API must end in ('ok' or an error code); any other typed ending is then a finding too. */
  expect?: Partial<Record<ApiName, string>>;
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const json = (v: unknown): Uint8Array => enc(JSON.stringify(v, null, 2));

/** A safetensors file of F32 tensors (zeros), laid out as the writer lays them out. */
function safetensorsBytes(entries: readonly { name: string; shape: number[] }[], metadata?: Record<string, string>): Uint8Array {
  const { prefix, fileSize } = layoutHeader(entries.map((e) => ({ ...e, dtype: 'f32' })), metadata, 'probe');
  const out = new Uint8Array(fileSize);
  out.set(prefix);
  return out;
}

const LORA_BASE = { peft_type: 'LORA', r: 1, lora_alpha: 1, target_modules: ['q_proj', 'v_proj'] };
const LONG_MODULE = `model.${'a'.repeat(20_000)}.layers.0.q_proj`;

/** A PEFT adapter whose modules are these names, rank 1 (A [1, 2], B [2, 1]). */
function adapter(config: Record<string, unknown>, modules: readonly string[]): Sample {
  const entries = modules.flatMap((m) => [{ name: `base_model.model.${m}.lora_A.weight`, shape: [1, 2] }, { name: `base_model.model.${m}.lora_B.weight`, shape: [2, 1] }]);
  return { format: 'peft', files: { 'adapter_config.json': json(config), 'adapter_model.safetensors': safetensorsBytes(entries) } };
}

const layerModules = (n: number): string[] => Array.from({ length: n }, (_, i) => `model.layers.${i}.self_attn.${i % 2 === 0 ? 'q' : 'v'}_proj`);

/** 768 MiB of zeros as an .npy member, deflated (about 780 KB), streamed through zlib so it is never held whole. */
async function deflateBomb(): Promise<Sample> {
  const n = 768 * 2 ** 20;
  const header = joinNpy(1, `{'descr': '|u1', 'fortran_order': False, 'shape': (${n},), }`, new Uint8Array(0));
  const zeros = new Uint8Array(2 ** 20);
  const z = createDeflateRaw({ level: constants.Z_BEST_COMPRESSION });
  const out: Buffer[] = [];
  z.on('data', (b: Buffer) => out.push(b));
  const done = new Promise((resolve, reject) => z.on('end', resolve).on('error', reject));
  let crc = crc32(header);
  z.write(header);
  for (let i = 0; i < n / zeros.length; i++) {
    crc = crc32(zeros, crc);
    if (!z.write(zeros)) await new Promise((resolve) => z.once('drain', resolve));
  }
  z.end();
  await done;
  const stored = new Uint8Array(Buffer.concat(out));
  return { format: 'npz', files: { 'input.npz': buildZip([{ name: 'bomb.npy', method: 8, data: new Uint8Array(0), packed: { stored, crc, size: header.length + n } }]) } };
}

const INVALID = ['[', '(?<=a)b', 'a{2,1}', '\\1', '(unclosed'];
const CATASTROPHIC = '(.*)*x';

export const PROBES: readonly Probe[] = [
  ...(['rank_pattern', 'alpha_pattern'] as const).map((field): Probe => ({
    name: `catastrophic regex key in ${field}`,
    format: 'peft',
    build: () => adapter({ ...LORA_BASE, [field]: { [CATASTROPHIC]: 1, '(a+)+$': 1 } }, [LONG_MODULE]),
    expect: { openAdapter: 'ok' },
  })),
  { name: 'catastrophic regex as target_modules', format: 'peft', build: () => adapter({ ...LORA_BASE, target_modules: CATASTROPHIC }, [LONG_MODULE]), expect: { openAdapter: 'ok' } },
  ...(['layers_pattern', 'modules_to_save', 'exclude_modules'] as const).map((field): Probe => ({
    name: `catastrophic regex in ${field}`,
    format: 'peft',
    build: () => adapter({ ...LORA_BASE, layers_to_transform: [0], [field]: field === 'exclude_modules' ? CATASTROPHIC : [CATASTROPHIC] }, [LONG_MODULE]),
    expect: { openAdapter: 'ok' },
  })),
  ...(['layers_pattern', 'modules_to_save', 'exclude_modules', 'target_modules'] as const).flatMap((field) =>
    INVALID.map((bad): Probe => ({
      name: `invalid regex ${JSON.stringify(bad)} in ${field}`,
      format: 'peft',
      build: () => adapter({ ...LORA_BASE, [field]: field === 'modules_to_save' ? [bad] : bad }, layerModules(2)),
      expect: { openAdapter: 'E_FORMAT' },
    })),
  ),
  {
    name: '5,000 rank_pattern + 5,000 alpha_pattern name keys over 3,000 modules',
    format: 'peft',
    build: () => {
      const keys = Object.fromEntries(layerModules(5000).map((m) => [patternKey(m), 1]));
      return adapter({ ...LORA_BASE, rank_pattern: keys, alpha_pattern: { ...keys } }, layerModules(3000));
    },
    expect: { openAdapter: 'ok' },
  },
  {
    name: '5,000 rank_pattern + 5,000 alpha_pattern regex keys over 3,000 modules',
    format: 'peft',
    build: () => {
      const keys = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`layers\\.${i}\\..*_proj`, 1]));
      return adapter({ ...LORA_BASE, rank_pattern: keys, alpha_pattern: { ...keys } }, layerModules(3000));
    },
    expect: { openAdapter: 'E_FORMAT' },
  },
  {
    name: '256 rank_pattern + 256 alpha_pattern regex keys (the limit) over 3,000 modules',
    format: 'peft',
    build: () => {
      const keys = Object.fromEntries(Array.from({ length: 256 }, (_, i) => [`layers\\.${i * 11}\\..*_proj`, 1]));
      return adapter({ ...LORA_BASE, rank_pattern: keys, alpha_pattern: { ...keys } }, layerModules(3000));
    },
    expect: { openAdapter: 'ok' },
  },
  {
    name: 'method adapter with 15,000 lowrank_keys and 15,000 tensors',
    format: 'method',
    build: () => {
      const keys = Object.fromEntries(Array.from({ length: 15_000 }, (_, i) => [`role${i}`, `k${i}.weight`]));
      const entries = Array.from({ length: 15_000 }, (_, i) => ({ name: `base_model.model.model.layers.0.proj.k${i}.weight`, shape: [1] }));
      return { format: 'method', files: { 'adapter_config.json': json({ peft_type: 'LOWRANK', lowrank_method: 'svfit', r: 1, lowrank_keys: keys }), 'adapter_model.safetensors': safetensorsBytes(entries) } };
    },
    expect: { readMethodAdapter: 'ok' },
  },
  {
    name: 'a 99 MB safetensors header of 1.65M zero-size tensors',
    format: 'safetensors',
    build: () => ({ format: 'safetensors', files: { 'input.safetensors': probeHeaderFile('zero-size').file } }),
    expect: { openSafetensors: 'E_LIMIT' },
  },
  {
    name: 'the largest header read: 262,144 zero-size tensors whose names fill 99 MB',
    format: 'safetensors',
    build: () => ({ format: 'safetensors', files: { 'input.safetensors': probeHeaderFile('most-tensors').file } }),
    expect: { openSafetensors: 'ok' },
  },
  { name: 'an honest deflate bomb: 768 MiB of zeros in an .npz', format: 'npz', build: deflateBomb, expect: { readNpzHeaders: 'ok', readNpz: 'ok' } },
  {
    name: 'a stored .npz member declaring 4 GiB',
    format: 'npz',
    build: () => ({ format: 'npz', files: { 'input.npz': buildZip([{ name: 'a.npy', method: 0, data: joinNpy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1073741824,), }", new Uint8Array(16)) }], { lyingSize: 0xfffffff0 }) } }),
  },
  ...(['config.json', 'adapter_config.json'] as const).map((name): Probe => ({
    name: `malformed pretty-printed ${name} (the error is one line)`,
    format: name === 'config.json' ? 'model' : 'peft',
    build: () => {
      const files = name === 'config.json' ? { 'model.safetensors': safetensorsBytes([{ name: 'w', shape: [2] }]) } : adapter(LORA_BASE, layerModules(1)).files;
      return { format: name === 'config.json' ? 'model' : 'peft', files: { ...files, [name]: enc('{\n  "model_type": "llama",\n  "r": 4,\n  "hidden_size": 8,\n}\n') } };
    },
    expect: name === 'config.json' ? { openModel: 'E_FORMAT' } : { openAdapter: 'E_FORMAT' },
  })),
  {
    name: 'config.json of 100,000 nested brackets',
    format: 'model',
    build: () => ({ format: 'model', files: { 'config.json': enc(`{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}`), 'model.safetensors': safetensorsBytes([{ name: 'w', shape: [2] }]) } }),
  },
  {
    name: 'an index of 200,000 weight_map entries over one small shard',
    format: 'sharded',
    build: () => ({
      format: 'sharded',
      files: {
        'model.safetensors.index.json': json({ weight_map: Object.fromEntries(Array.from({ length: 200_000 }, (_, i) => [`t${i}`, 'model-00001-of-00001.safetensors'])) }),
        'model-00001-of-00001.safetensors': safetensorsBytes([{ name: 't0', shape: [1] }]),
      },
    }),
    expect: { openModel: 'E_FORMAT' },
  },
  {
    name: 'a 1 MiB tensor name and 100,000-dim shape',
    format: 'safetensors',
    build: () => ({ format: 'safetensors', files: { 'input.safetensors': safetensorsBytes([{ name: 'n'.repeat(2 ** 20), shape: [1] }, { name: 'dims', shape: Array.from({ length: 100_000 }, () => 1) }]) } }),
  },
  {
    name: 'an .npy header of 10,000 dimensions',
    format: 'npy',
    build: () => ({ format: 'npy', files: { 'input.npy': joinNpy(2, `{'descr': '<f4', 'fortran_order': False, 'shape': (${Array(10_000).fill(1).join(', ')}), }`, new Uint8Array(4)) } }),
  },
  // Fuzz findings (seed 11): JSON nested 100,000 deep where a config holds a name or a number overflowed String() and JSON.stringify in error messages.
  ...(['peft_type', 'r', 'lora_alpha', 'lowrank_method'] as const).map((field): Probe => ({
    name: `adapter_config.json whose ${field} is a list nested 100,000 deep`,
    format: 'method',
    build: () => {
      const config = JSON.stringify({ peft_type: 'LOWRANK', lowrank_method: 'svfit', r: 1, lora_alpha: 1, lowrank_keys: {}, [field]: 0 }).replace(`"${field}":0`, `"${field}":${'['.repeat(100_000)}${']'.repeat(100_000)}`);
      return { format: 'method', files: { 'adapter_config.json': enc(config), 'adapter_model.safetensors': safetensorsBytes([{ name: 'base_model.model.m.x', shape: [1] }]) } };
    },
  })),
  ...([['vera', 'VERA'], ['nola', 'LOWRANK'], ['mos', 'LOWRANK'], ['randlora', 'RANDLORA'], ['vblora', 'VBLORA'], ['tinylora', 'TINYLORA']] as const).map(([method, type]): Probe => ({
    name: `${method} adapter whose r and recorded shapes ask for a 10^12-element shared basis`,
    format: 'method',
    build: () => ({
      format: 'method',
      files: {
        'adapter_config.json': json({ peft_type: type, lowrank_method: method, r: 1_000_000, lowrank_keys: {} }),
        'adapter_model.safetensors': safetensorsBytes([{ name: 'base_model.model.m.x', shape: [1] }], { lowrank_shapes: JSON.stringify({ m: [1_000_000, 1_000_000] }), lowrank_method: method }),
      },
    }),
  })),
];
