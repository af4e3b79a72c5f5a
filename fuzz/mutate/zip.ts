/**
 * Structure-aware .npz mutations: zip records (end record, central directory entries, local
 * headers) get boundary values in their size, offset, count, method, flag and CRC fields; or the
 * archive is rebuilt from its members with a changed member (an .npy mutation, a new name, zip64
 * fields, a lying size) and, usually, honest CRCs and sizes so the change reaches the .npy reader.
 */
import { deflateSync, inflateSync } from 'fflate';
import { crc32, endRecord, SIG_CENTRAL, SIG_END, SIG_LOCAL, zipHeader, type ZipMember } from '../../src/io/npz.js';
import type { Rand } from '../rand.js';
import { mutateNpy } from './npy.js';

const END = SIG_END;
const CENTRAL = SIG_CENTRAL;
const LOCAL = SIG_LOCAL;

export interface Member {
  name: string;
  method: number;
  /** The .npy bytes (inflated). */
  data: Uint8Array;
  /** Already compressed contents (data is then unused), with their CRC and inflated size. */
  packed?: { stored: Uint8Array; crc: number; size: number };
}


/** Field offsets (from the record's signature) of the fields worth breaking, with their width. */
const END_FIELDS: [number, 2 | 4][] = [[4, 2], [6, 2], [8, 2], [10, 2], [12, 4], [16, 4], [20, 2]];
const CENTRAL_FIELDS: [number, 2 | 4][] = [[6, 2], [8, 2], [10, 2], [16, 4], [20, 4], [24, 4], [28, 2], [30, 2], [32, 2], [34, 2], [42, 4]];
const LOCAL_FIELDS: [number, 2 | 4][] = [[6, 2], [8, 2], [14, 4], [18, 4], [22, 4], [26, 2], [28, 2]];
const VALUES = [0, 1, 2, 8, 12, 14, 99, 0x41, 0x800, 0x7fff, 0xffff, 0x10000, 0x7fffffff, 0xfffffffe, 0xffffffff];

function records(b: Uint8Array): { end?: number; central: number[]; local: number[] } {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: { end?: number; central: number[]; local: number[] } = { central: [], local: [] };
  for (let i = 0; i + 4 <= b.length; i++) {
    const sig = view.getUint32(i, true);
    if (sig === END) out.end = i;
    else if (sig === CENTRAL) out.central.push(i);
    else if (sig === LOCAL) out.local.push(i);
  }
  return out;
}

/** The members of an archive this module can take apart (its own and encodeNpz's), or undefined. */
function members(b: Uint8Array): Member[] | undefined {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: Member[] = [];
  for (const at of records(b).local) {
    if (at + 30 > b.length) return undefined;
    const method = view.getUint16(at + 8, true);
    const csize = view.getUint32(at + 18, true);
    const nameLen = view.getUint16(at + 26, true);
    const start = at + 30 + nameLen + view.getUint16(at + 28, true);
    if (start + csize > b.length || (method !== 0 && method !== 8)) return undefined;
    const stored = b.subarray(start, start + csize);
    try {
      out.push({ name: new TextDecoder().decode(b.subarray(at + 30, at + 30 + nameLen)), method, data: method === 8 ? inflateSync(stored) : stored.slice() });
    } catch {
      return undefined;
    }
  }
  return out;
}

interface BuildOptions {
  /** Put zip64 extra fields in, with 0xffffffff in the 32-bit size and offset fields. */
  zip64?: boolean;
  /** Declare this uncompressed size for member 0 instead of the real one. */
  lyingSize?: number;
  /** Store this CRC for member 0 instead of the real one. */
  badCrc?: boolean;
}

/** A zip archive of these members (as np.savez writes one, or with the options' irregularities), from npz's own writer pieces. */
export function buildZip(ms: readonly Member[], opts: BuildOptions = {}): Uint8Array {
  const z64 = opts.zip64 === true;
  const pieces: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let at = 0;
  ms.forEach((m, i) => {
    const stored = m.packed?.stored ?? (m.method === 8 ? deflateSync(m.data) : m.data);
    const crc = m.packed?.crc ?? crc32(m.data);
    const member: ZipMember = {
      name: new TextEncoder().encode(m.name),
      method: m.method,
      crc: opts.badCrc === true && i === 0 ? (crc ^ 1) >>> 0 : crc,
      size: opts.lyingSize !== undefined && i === 0 ? opts.lyingSize : (m.packed?.size ?? m.data.length),
      stored,
    };
    const local = zipHeader('local', member, at, z64 ? zip64Extra(member.size, stored.length) : undefined);
    const entry = zipHeader('central', member, at, z64 ? zip64Extra(member.size, stored.length, at) : undefined);
    if (z64) {
      markZip64(local, 4, [18, 22]);
      markZip64(entry, 6, [20, 24, 42]);
    }
    pieces.push(local, stored);
    central.push(entry);
    at += local.length + stored.length;
  });
  const centralSize = central.reduce((n, c) => n + c.length, 0);
  return Buffer.concat([...pieces, ...central, endRecord(ms.length, centralSize, at)]);
}

/** A zip64 extended-information extra field: the two sizes and, in a central entry, the local header's offset. */
function zip64Extra(size: number, compressed: number, offset?: number): Uint8Array {
  const n = offset === undefined ? 16 : 24;
  const extra = new Uint8Array(4 + n);
  const v = new DataView(extra.buffer);
  v.setUint16(0, 1, true);
  v.setUint16(2, n, true);
  v.setBigUint64(4, BigInt(size), true);
  v.setBigUint64(12, BigInt(compressed), true);
  if (offset !== undefined) v.setBigUint64(20, BigInt(offset), true);
  return extra;
}

/** A header's 32-bit `fields` set to 0xffffffff (see the zip64 field) and its version needed to 4.5. */
function markZip64(header: Uint8Array, versionNeeded: number, fields: readonly number[]): void {
  const v = new DataView(header.buffer, header.byteOffset, header.byteLength);
  v.setUint16(versionNeeded, 45, true);
  for (const f of fields) v.setUint32(f, 0xffffffff, true);
}

/** One zip-level change, or undefined when the archive cannot be taken apart. */
export function mutateZip(r: Rand, b: Uint8Array): { bytes: Uint8Array; what: string } | undefined {
  const op = r.below(4);
  if (op === 0) {
    const rec = records(b);
    const kinds: [string, number[], [number, 2 | 4][]][] = [['end record', rec.end === undefined ? [] : [rec.end], END_FIELDS], ['central entry', rec.central, CENTRAL_FIELDS], ['local header', rec.local, LOCAL_FIELDS]];
    const present = kinds.filter(([, a]) => a.length > 0);
    if (present.length === 0) return undefined; // no record found: a byte mutation instead
    const [kind, ats, fields] = r.pick(present);
    const at = r.pick(ats);
    const [off, width] = r.pick(fields);
    if (at + off + width > b.length) return undefined;
    const out = new Uint8Array(b);
    const view = new DataView(out.buffer);
    const v = r.chance(0.8) ? r.pick(VALUES) : r.below(2 ** 32);
    if (width === 2) view.setUint16(at + off, v & 0xffff, true);
    else view.setUint32(at + off, v >>> 0, true);
    return { bytes: out, what: `${kind} at ${at}: field +${off} = ${v}` };
  }
  const ms = members(b);
  if (ms === undefined || ms.length === 0) return undefined;
  const i = r.below(ms.length);
  const changed = ms.map((m) => ({ ...m }));
  let what: string;
  const opts: BuildOptions = {};
  if (op === 1) {
    const m = mutateNpy(r, changed[i].data);
    if (m === undefined) return undefined;
    changed[i].data = m.bytes;
    what = `member '${changed[i].name}': ${m.what}`;
  } else if (op === 2) {
    const to = r.pick(['../evil.npy', '/abs.npy', '', '.npy', '__proto__.npy', 'constructor.npy', changed[(i + 1) % changed.length].name, 'readme.txt', 'a\u0000b.npy', `${'x'.repeat(70_000)}.npy`]);
    what = `member '${changed[i].name}' renamed '${to.slice(0, 20)}'`;
    changed[i].name = to;
  } else {
    const which = r.below(5);
    if (which === 0) opts.zip64 = true;
    else if (which === 1) opts.badCrc = true;
    else if (which === 2) opts.lyingSize = r.pick([0, 1, changed[0].data.length + 1, changed[0].data.length * 1100, 0xffffffff]);
    else if (which === 3) changed.forEach((m) => (m.method = m.method === 8 ? 0 : 8));
    else changed.push(...Array.from({ length: r.pick([2, 100, 3000]) }, (_, k) => ({ ...changed[i], name: `copy${k}.npy` })));
    what = `rebuilt: ${JSON.stringify(opts)}${which === 3 ? ' methods swapped' : which === 4 ? ' members repeated' : ''}`;
  }
  return { bytes: buildZip(changed, opts), what };
}
