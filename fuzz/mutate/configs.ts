/**
 * Field-aware mutations of the JSON files beside the tensors: adapter_config.json (PEFT LoRA and
 * lowrank's method adapters: patterns, ranks, lowrank_keys), config.json and the shard index.
 */
import type { Rand } from '../rand.js';
import { HOSTILE_PATTERNS, SMALL_PATTERNS, hostileValue, mutateJson, parseJson, writeJson, Raw, type Json } from './json.js';

const RANKS = [0, -1, 1, 2, 3, 1.5, 64, 65536, 1e6, 2 ** 31, 2 ** 53, 1e308];

function patternMap(r: Rand): Json {
  const n = r.pick([1, 2, 50, 5000]);
  // At most one hostile key per map (the big ones are 10 KB), anywhere in it.
  const odd = r.below(n);
  return Object.fromEntries(Array.from({ length: n }, (_, i) => [i === odd && r.chance(0.7) ? r.pick(HOSTILE_PATTERNS) : `model\\.layers\\.${i}\\.self_attn\\.q_proj`, r.chance(0.8) ? r.pick(RANKS) : hostileValue(r, false)]));
}

function names(r: Rand): Json {
  if (r.chance(0.4)) return r.pick(HOSTILE_PATTERNS);
  return Array.from({ length: r.pick([0, 1, 3, 3000]) }, (_, i) => (r.chance(0.2) ? r.pick(SMALL_PATTERNS) : `m${i}_proj`));
}

/** A hostile value for a known field of one of the config files. */
const FIELD_VALUES: Record<string, (r: Rand) => Json> = {
  r: (r) => r.pick(RANKS),
  lora_alpha: (r) => r.pick([...RANKS, new Raw('1e999'), '8']),
  target_modules: (r) => (r.chance(0.2) ? 'all-linear' : names(r)),
  rank_pattern: patternMap,
  alpha_pattern: patternMap,
  layers_pattern: names,
  modules_to_save: names,
  exclude_modules: names,
  layers_to_transform: (r) => r.pick([0, -1, 1.5, [0, 1], [2 ** 53], 'x', Array.from({ length: 10_000 }, (_, i) => i)]),
  peft_type: (r) => r.pick(['LORA', 'LOWRANK', 'VERA', 'RANDLORA', 'VBLORA', 'TINYLORA', 'UNILORA', 'ADALORA', 'lora', '', null, 3]),
  use_dora: (r) => r.pick([true, false, 'true', 1, null]),
  use_rslora: (r) => r.pick([true, false, 'false', 0]),
  fan_in_fan_out: (r) => r.pick([true, false, 'no']),
  bias: (r) => r.pick(['none', 'all', 'lora_only', 'some', null]),
  init_lora_weights: (r) => r.pick([true, false, 'pissa', 'pissa_niter_-1', 'olora', 7, null]),
  lowrank_method: (r) => r.pick(['svfit', 'vera', 'nola', 'mos', 'unknown', '', '__proto__', 'constructor', 'toString', null, 4]),
  lowrank_keys: (r) =>
    r.chance(0.5)
      ? Object.fromEntries(Array.from({ length: r.pick([0, 1, 2, 15_000]) }, (_, i) => [r.chance(0.1) ? '__proto__' : `role${i}`, r.chance(0.9) ? `k${i}.weight` : hostileValue(r, false)]))
      : hostileValue(r),
  lowrank_shared_keys: (r) => (r.chance(0.5) ? { A: 'base_model.x', B: '' } : hostileValue(r)),
  seed: (r) => r.pick([0, -1, 1.5, 2 ** 53, 1e308, 'x']),
  projection_prng_key: (r) => r.pick([0, -1, 1.5, 2 ** 53, 'x']),
  num_vectors: (r) => r.pick(RANKS),
  vector_length: (r) => r.pick(RANKS),
  n_basis: (r) => r.pick(RANKS),
  weight_map: (r) => {
    const n = r.pick([0, 1, 100, 20_000]);
    return Object.fromEntries(Array.from({ length: n }, (_, i) => [r.chance(0.1) ? '__proto__' : `t${i}`, r.chance(0.7) ? r.pick(['model.safetensors', '../x.safetensors', '', '.', '..', 'a/b', 'model-00001-of-00002.safetensors', 'missing.safetensors']) : hostileValue(r, false)]));
  },
  total_size: (r) => r.pick(RANKS),
  torch_dtype: (r) => r.pick(['float32', 'bfloat16', 'float8', '', null, 5]),
  hidden_size: (r) => r.pick(RANKS),
  num_hidden_layers: (r) => r.pick(RANKS),
  vocab_size: (r) => r.pick(RANKS),
  architectures: (r) => r.pick([['LlamaForCausalLM'], [], 'x', [null], null]),
};

const FIELDS = Object.keys(FIELD_VALUES);

/** One change of a JSON config file's text, or undefined when it is not JSON (byte mutations cover that). */
export function mutateConfig(r: Rand, bytes: Uint8Array): { bytes: Uint8Array; what: string } | undefined {
  const doc = parseJson(new TextDecoder().decode(bytes));
  if (doc === undefined || doc === null || typeof doc !== 'object' || Array.isArray(doc) || doc instanceof Raw) return undefined;
  const encode = (d: Json): Uint8Array => new TextEncoder().encode(writeJson(r, d));
  if (r.chance(0.35)) {
    const m = mutateJson(r, doc);
    return { bytes: encode(m.doc), what: `JSON: ${m.what}` };
  }
  // Fields the file has are changed more often than ones it lacks.
  const present = FIELDS.filter((f) => f in doc);
  const field = present.length > 0 && r.chance(0.7) ? r.pick(present) : r.pick(FIELDS);
  const value = FIELD_VALUES[field](r);
  if (field === 'total_size') doc.metadata = { total_size: value };
  else doc[field] = value;
  return { bytes: encode(doc), what: `field ${field}` };
}
