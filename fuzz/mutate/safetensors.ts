/**
 * Structure-aware safetensors mutations: the header JSON is parsed, one entry's dtype, shape,
 * offsets or name (or the metadata) is changed, and the file is reassembled, usually with an honest
 * header length so the change reaches the checks behind it.
 */
import type { Rand } from '../rand.js';
import { HOSTILE_PATTERNS, copyJson, hostileValue, mutateJson, parseJson, stringify, writeJson, Raw, type Json } from './json.js';

const DTYPES = ['F32', 'F16', 'BF16', 'F64', 'I8', 'I16', 'I32', 'I64', 'U8', 'U16', 'U32', 'U64', 'BOOL', 'F8_E4M3', 'F8_E5M2', 'F8_E8M0', 'F4', 'C64', 'f32', 'F17', '', 'Q4_0'];
const NUMBERS = [0, 1, 2, 3, 4, 7, 8, -1, 1.5, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 2 ** 63, 1e308];

function split(b: Uint8Array): { header: Json; data: Uint8Array } | undefined {
  if (b.length < 8) return undefined;
  const n = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
  if (n > b.length - 8) return undefined;
  const header = parseJson(new TextDecoder().decode(b.subarray(8, 8 + n)));
  return header === undefined ? undefined : { header, data: b.subarray(8 + n) };
}

function assemble(text: string, data: Uint8Array, lengthDelta: number): Uint8Array {
  const json = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(Math.max(0, json.length + lengthDelta)), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function shapeValue(r: Rand): Json {
  switch (r.below(5)) {
    case 0: return Array.from({ length: r.between(0, 4) }, () => r.pick(NUMBERS));
    case 1: return [r.pick([2 ** 26, 2 ** 31, 2 ** 40]), r.pick([2 ** 26, 2 ** 31, 2 ** 40])];
    case 2: return Array.from({ length: r.pick([64, 1000, 100_000]) }, () => 1);
    case 3: return [r.between(0, 64), r.between(0, 64)];
    default: return hostileValue(r);
  }
}

function offsetsValue(r: Rand, size: number): Json {
  switch (r.below(4)) {
    case 0: return [r.pick(NUMBERS), r.pick(NUMBERS)];
    case 1: return [r.between(0, size), r.between(0, size)];
    case 2: return [0, new Raw(r.pick(['1e999', '18446744073709551616', '9007199254740993', '-0']))];
    default: return hostileValue(r);
  }
}

/** One header-level change, or undefined when `b` has no header that parses (byte mutations cover that). */
export function mutateSafetensors(r: Rand, b: Uint8Array): { bytes: Uint8Array; what: string } | undefined {
  const parts = split(b);
  if (parts === undefined || parts.header === null || typeof parts.header !== 'object' || Array.isArray(parts.header) || parts.header instanceof Raw) return undefined;
  const header = copyJson(parts.header) as Record<string, Json>;
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const name = names.length > 0 ? r.pick(names) : undefined;
  const entry = name === undefined ? undefined : header[name];
  let data = parts.data;
  let what: string;
  const op = r.below(10);
  if (entry !== undefined && entry !== null && typeof entry === 'object' && !Array.isArray(entry) && !(entry instanceof Raw) && op < 6) {
    const field = r.pick(['dtype', 'shape', 'data_offsets', 'dtype', 'shape', 'data_offsets', 'extra']);
    if (field === 'dtype') entry.dtype = r.chance(0.8) ? r.pick(DTYPES) : hostileValue(r);
    else if (field === 'shape') entry.shape = shapeValue(r);
    else if (field === 'data_offsets') entry.data_offsets = offsetsValue(r, data.length);
    else entry[r.pick(['extra', '__proto__', 'dtype '])] = hostileValue(r);
    what = `${field} of '${name}'`;
  } else if (op === 6 && name !== undefined) {
    const to = r.chance(0.5) ? r.pick(['', '__proto__', '__metadata__', 'constructor', 'x'.repeat(100_000), names[0], ...HOSTILE_PATTERNS.slice(0, 4)]) : `${name}.lora_A.weight`;
    const renamed = Object.fromEntries(Object.entries(header).map(([k, v]) => [k === name ? to : k, v]));
    what = `rename '${name}'`;
    return { bytes: assemble(writeJson(r, renamed), data, 0), what };
  } else if (op === 7) {
    const meta = header.__metadata__;
    if (meta !== null && typeof meta === 'object' && !Array.isArray(meta) && !(meta instanceof Raw) && typeof meta.lowrank_shapes === 'string' && r.chance(0.7)) {
      const inner = parseJson(meta.lowrank_shapes) ?? {};
      meta.lowrank_shapes = stringify(mutateJson(r, inner, (g) => (g.chance(0.5) ? [g.pick([1, 2 ** 20, 2 ** 30, 2 ** 53]), g.pick([1, 8, 2 ** 20, 2 ** 30])] : hostileValue(g))).doc);
      what = 'lowrank_shapes metadata';
    } else {
      header.__metadata__ = r.chance(0.5) ? hostileValue(r) : { ...(typeof meta === 'object' && meta !== null ? meta : {}), [r.pick(['lowrank_seed', 'lowrank_shapes', 'format', 'lowrank_method'])]: r.chance(0.5) ? String(hostileValue(r)) : hostileValue(r) };
      what = '__metadata__';
    }
  } else if (op === 8) {
    // Many tensors: the same entry under many names, or zero-size entries.
    const n = r.chance(0.9) ? r.pick([10, 100, 1000]) : 10_000;
    for (let i = 0; i < n; i++) header[`t${i}`] = { dtype: 'F32', shape: [0], data_offsets: [data.length, data.length] };
    what = `${n} more zero-size tensors`;
  } else {
    const m = mutateJson(r, header);
    return { bytes: assemble(writeJson(r, m.doc), data, r.chance(0.9) ? 0 : r.pick([-1, 1, 7, -8])), what: `header JSON: ${m.what}` };
  }
  if (r.chance(0.1)) data = data.subarray(0, r.below(data.length + 1));
  const delta = r.chance(0.9) ? 0 : r.pick([-1, 1, 8, -8]);
  return { bytes: assemble(r.chance(0.1) ? writeJson(r, header) + ' '.repeat(r.below(16)) : writeJson(r, header), data, delta), what };
}
