/**
 * Hostile safetensors headers of the format's maximum size, for the io suite's (d) and the header
 * tests: `probeHeaderFile(kind, bytes)` gives the bytes of a whole file (8-byte length, JSON
 * padded with spaces to `bytes`, and an empty data buffer: every tensor has no elements).
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

/**
 * The `model.safetensors.index.json` of a folder whose one shard, `shard`, is the `kind` probe of
 * `bytes`: every one of its tensors listed.
 */
export function probeIndexJson(shard: string, kind: ProbeKind, bytes = PROBE_BYTES): string {
  const names = Object.keys(JSON.parse(probeJson(kind, bytes - 2)) as Record<string, unknown>);
  return `{"metadata":{"total_size":0},"weight_map":{${names.map((n) => `"${n}":"${shard}"`).join(',')}}}`;
}

export function probeHeaderFile(kind: ProbeKind, bytes = PROBE_BYTES): Uint8Array {
  const json = new TextEncoder().encode(probeJson(kind, bytes - 2));
  const out = new Uint8Array(8 + bytes).fill(0x20, 8);
  new DataView(out.buffer).setBigUint64(0, BigInt(bytes), true);
  out.set(json, 8);
  return out;
}

/** The JSON text, at most `room` characters (all ASCII). */
function probeJson(kind: ProbeKind, room: number): string {
  if (kind === 'nested') {
    const head = `{"t":{"dtype":"F32","shape":[0],"data_offsets":[0,0],"junk":`;
    const depth = Math.floor((room - head.length - 2) / 2);
    return `${head}${'['.repeat(depth)}${']'.repeat(depth)}}}`;
  }
  const parts: string[] = [];
  let used = 2 + (kind === 'metadata' ? '"__metadata__":{}'.length : 0);
  // Each most-tensors member: quotes, colon, comma and EMPTY around a name of `padded` characters.
  const padded = Math.floor((room - used) / MAX_TENSORS) - EMPTY.length - 4;
  for (let i = 0; kind !== 'most-tensors' || i < MAX_TENSORS; i++) {
    const id = String(i).padStart(7, '0');
    const member =
      kind === 'zero-size' ? `"t${id}":${EMPTY}` : kind === 'most-tensors' ? `"${id.padEnd(padded, 'x')}":${EMPTY}` : kind === 'long-names' ? `"${id.padEnd(60_000, 'x')}":${EMPTY}` : `"k${id}":"v"`;
    if (used + member.length + 1 > room) break;
    parts.push(member);
    used += member.length + 1;
  }
  return kind === 'metadata' ? `{"__metadata__":{${parts.join(',')}}}` : `{${parts.join(',')}}`;
}
