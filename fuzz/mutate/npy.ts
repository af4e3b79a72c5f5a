/**
 * Structure-aware .npy mutations: the header dict (`{'descr': '<f4', 'fortran_order': False,
 * 'shape': (3, 4), }`) is rewritten field by field or as text, the version and header length are
 * changed, and the file is reassembled around the same data.
 */
import type { Rand } from '../rand.js';

const DESCRS = ['<f4', '<f8', '<f2', '<i8', '<i4', '<i2', '|i1', '|u1', '<u2', '<u4', '<u8', '|b1', '>f4', '=f4', '<c8', '|O', '<U3', '|S2', '<M8[s]', "[('a', '<f4')]", '<f16', 'f4', '<V4', '', '<x4', '<f4 ', '<ff'];
const DIMS = ['0', '1', '3', '4', '-1', '1.5', '2**40', '9223372036854775807', '18446744073709551616', '1e3', '0x10', "'3'", 'None', '()', '1_000'];

function splitNpy(b: Uint8Array): { major: number; header: string; data: Uint8Array } | undefined {
  if (b.length < 10 || b[0] !== 0x93) return undefined;
  const major = b[6];
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const wide = major >= 2;
  if (wide && b.length < 12) return undefined;
  const len = wide ? view.getUint32(8, true) : view.getUint16(8, true);
  const start = wide ? 12 : 10;
  if (start + len > b.length) return undefined;
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(b.subarray(start, start + len));
  return { major, header, data: b.subarray(start + len) };
}

/** An .npy file from its parts, padded as numpy pads (or not, when `pad` is false). */
export function joinNpy(major: number, header: string, data: Uint8Array, opts: { pad?: boolean; lengthDelta?: number } = {}): Uint8Array {
  const wide = major >= 2;
  const start = wide ? 12 : 10;
  let text = header;
  if (opts.pad !== false) {
    const total = start + new TextEncoder().encode(text).length + 1;
    text += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  }
  const body = major === 3 ? new TextEncoder().encode(text) : Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);
  const out = new Uint8Array(start + body.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const view = new DataView(out.buffer);
  const len = Math.max(0, body.length + (opts.lengthDelta ?? 0));
  if (wide) view.setUint32(8, len, true);
  else view.setUint16(8, Math.min(len, 0xffff), true);
  out.set(body, start);
  out.set(data, start + body.length);
  return out;
}

function shapeText(r: Rand): string {
  const n = r.pick([0, 1, 1, 2, 3, 40, 10_000]);
  const dims = Array.from({ length: n }, () => (r.chance(0.7) ? String(r.between(0, 6)) : r.pick(DIMS)));
  if (r.chance(0.1)) return r.pick(['[3, 4]', '(3 4)', '((3,), 4)', `${'('.repeat(1000)}${')'.repeat(1000)}`, '(', '3', '(,)']);
  return n === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
}

/** One header-level change of an .npy file, or undefined when it has no header to change. */
export function mutateNpy(r: Rand, b: Uint8Array): { bytes: Uint8Array; what: string } | undefined {
  const p = splitNpy(b);
  if (p === undefined) return undefined;
  const fields: Record<string, string> = {};
  for (const m of p.header.matchAll(/'(\w+)':\s*('[^']*'|True|False|\([^)]*\))/g)) fields[m[1]] = m[2];
  let what: string;
  let major = p.major;
  let data = p.data;
  const op = r.below(8);
  if (op === 0) {
    fields.descr = `'${r.pick(DESCRS)}'`;
    what = `descr ${fields.descr}`;
  } else if (op === 1 || op === 2) {
    fields.shape = shapeText(r);
    what = `shape ${fields.shape.slice(0, 40)}`;
  } else if (op === 3) {
    fields.fortran_order = r.pick(['True', 'False', '0', 'None', "'False'"]);
    what = `fortran_order ${fields.fortran_order}`;
  } else if (op === 4) {
    const key = r.pick(Object.keys(fields).concat(['extra']));
    if (key in fields && r.chance(0.6)) delete fields[key];
    else fields[key] = r.pick(['1', "'x'", 'True', '{}', '[]', `'${'x'.repeat(5000)}'`]);
    what = `field ${key}`;
  } else if (op === 5) {
    major = r.pick([1, 2, 3, 0, 4, 255]);
    what = `version ${major}`;
  } else if (op === 6) {
    data = data.subarray(0, r.below(data.length + 1));
    what = 'data truncated';
  } else {
    const text = p.header;
    const i = r.below(text.length + 1);
    const piece = r.pick(["'", '"', '{', '}', '(', ')', ',', ':', '\\', '\u0000', 'é', '\n', "'descr': '<f4', ", ' '.repeat(2000)]);
    const header = r.chance(0.5) ? text.slice(0, i) + piece + text.slice(i) : text.slice(0, i) + text.slice(i + 1);
    return { bytes: joinNpy(major, header, data, { pad: false }), what: `header text edit at ${i}` };
  }
  const order = Object.keys(fields);
  if (r.chance(0.2)) order.reverse();
  const header = `{${order.map((k) => `'${k}': ${fields[k]}`).join(', ')}, }`;
  return { bytes: joinNpy(major, header, data, { pad: r.chance(0.9), lengthDelta: r.chance(0.9) ? 0 : r.pick([-1, 1, 64, -64]) }), what };
}
