/**
 * Hostile safetensors headers of the format's maximum size, for the io suite's (d) and the fuzz
 * probes: `probeHeaderFile(kind, bytes)` gives the bytes of a whole file (8-byte length, JSON
 * padded with spaces to `bytes`, and an empty data buffer: every tensor has no elements) and the
 * names of its tensors.
 *
 * - `zero-size`: as many tensors as fit, `"t0000001":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`
 *   (about 1.65 million in 99 MB; refused past MAX_TENSORS);
 * - `most-tensors`: MAX_TENSORS zero-size tensors, their names padded to fill the header (about 320
 *   characters each): the largest header lowrank accepts;
 * - `long-names`: tensors named by 60,000 characters (about 1,600 of them);
 * - `nested`: one tensor with an extra key whose value is arrays nested as deep as fits (49 million);
 * - `metadata`: `__metadata__` with as many short keys as fit (refused: more than MAX_METADATA_KEYS).
 */
import { MAX_TENSORS } from '../src/io/safetensors/header.js';

export const PROBE_KINDS = ['zero-size', 'most-tensors', 'long-names', 'nested', 'metadata'] as const;
export type ProbeKind = (typeof PROBE_KINDS)[number];

/** Just under the format's 100 MB limit on the header. */
export const PROBE_BYTES = 99_000_000;

const EMPTY = '{"dtype":"F32","shape":[0],"data_offsets":[0,0]}';

/** The `model.safetensors.index.json` of a folder whose one shard, `shard`, holds the tensors `names`. */
export function probeIndexJson(shard: string, names: readonly string[]): string {
  return `{"metadata":{"total_size":0},"weight_map":{${names.map((n) => `"${n}":"${shard}"`).join(',')}}}`;
}

export function probeHeaderFile(kind: ProbeKind, bytes = PROBE_BYTES): { file: Uint8Array; names: string[] } {
  const { text, names } = probeJson(kind, bytes - 2);
  const file = new Uint8Array(8 + bytes).fill(0x20, 8);
  new DataView(file.buffer).setBigUint64(0, BigInt(bytes), true);
  file.set(new TextEncoder().encode(text), 8);
  return { file, names };
}

/** The JSON text, at most `room` characters (all ASCII), and the tensor names in it. */
function probeJson(kind: ProbeKind, room: number): { text: string; names: string[] } {
  if (kind === 'nested') {
    const head = `{"t":{"dtype":"F32","shape":[0],"data_offsets":[0,0],"junk":`;
    const depth = Math.floor((room - head.length - 2) / 2);
    return { text: `${head}${'['.repeat(depth)}${']'.repeat(depth)}}}`, names: ['t'] };
  }
  const parts: string[] = [];
  const names: string[] = [];
  let used = 2 + (kind === 'metadata' ? '"__metadata__":{}'.length : 0);
  // Each most-tensors member: quotes, colon, comma and EMPTY around a name of `padded` characters.
  const padded = Math.floor((room - used) / MAX_TENSORS) - EMPTY.length - 4;
  for (let i = 0; kind !== 'most-tensors' || i < MAX_TENSORS; i++) {
    const id = String(i).padStart(7, '0');
    const name = kind === 'zero-size' ? `t${id}` : kind === 'most-tensors' ? id.padEnd(padded, 'x') : kind === 'long-names' ? id.padEnd(60_000, 'x') : `k${id}`;
    const member = `"${name}":${kind === 'metadata' ? '"v"' : EMPTY}`;
    if (used + member.length + 1 > room) break;
    parts.push(member);
    if (kind !== 'metadata') names.push(name);
    used += member.length + 1;
  }
  return { text: kind === 'metadata' ? `{"__metadata__":{${parts.join(',')}}}` : `{${parts.join(',')}}`, names };
}
