/**
 * The safetensors header parser against JSON.parse as the reference: the same names and fields for
 * valid JSON however it is spelled, E_FORMAT for invalid JSON, duplicate names refused however
 * they are escaped, and the limits on hostile headers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_METADATA_KEYS, MAX_TENSORS, parseHeader } from '../../src/io/safetensors/header.js';
import { NameIndex, hash26 } from '../../src/io/nameIndex.js';
import { LowrankError } from '../../src/core/errors.js';
import { rng } from '../../src/core/rng.js';

const FILE = 'hostile.safetensors';
const EMPTY = '{"dtype":"F32","shape":[0],"data_offsets":[0,0]}';

/** Parses a header text over a data buffer of `dataBytes`. */
function parse(text: string, dataBytes = 0): ReturnType<typeof parseHeader> {
  const json = new TextEncoder().encode(text);
  return parseHeader(json, 8 + json.length + dataBytes, FILE);
}

function assertFormatError(text: string, message: RegExp, what = text.slice(0, 60)): void {
  assert.throws(
    () => parse(text),
    (e: unknown) => {
      assert.ok(e instanceof LowrankError, `${what}: ${String(e)}`);
      assert.equal(e.code, 'E_FORMAT', `${what}: ${e.message}`);
      assert.ok(e.message.startsWith(FILE), `${what}: names the file: ${e.message}`);
      assert.doesNotMatch(e.message, /\n/, what);
      assert.match(e.message, message, what);
      return true;
    },
    what,
  );
}

/** What a header means by JSON.parse: each tensor's name, dtype, shape and offsets (file order of JSON.parse's keys aside). */
function reference(text: string): { names: string[]; fields: Record<string, { dtype: string; shape: number[]; data_offsets: number[] }> } {
  const obj = JSON.parse(text) as Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>;
  const names = Object.keys(obj).filter((k) => k !== '__metadata__');
  return { names: names.sort(), fields: obj };
}

test('names with escapes and non-ASCII characters parse to the names JSON.parse gives', () => {
  const names = ['plain', 'é', '中文.weight', 'tab\there', 'quote"and\\backslash', 'line\nbreak', '\u0000nul', 'emoji😀', 'lone\ud800surrogate', '__proto__', 'constructor', '1', '0'];
  // Spelled with every escape JSON has, and raw where JSON allows it.
  const spell = (n: string, i: number): string => (i % 2 === 0 ? JSON.stringify(n) : `"${Array.from({ length: n.length }, (_, k) => `\\u${n.charCodeAt(k).toString(16).padStart(4, '0')}`).join('')}"`);
  const text = `{${names.map((n, i) => `${spell(n, i)}:{"dtype":"U8","shape":[1],"data_offsets":[${i},${i + 1}]}`).join(',')}}`;
  const h = parse(text, names.length);
  assert.deepEqual(h.entries.map((e) => e.name), names);
  assert.deepEqual([...h.entries.map((e) => e.name)].sort(), reference(text).names);
  assert.deepEqual(h.entries.map((e) => e.byteOffset - h.dataStart), names.map((_, i) => i));
});

test('bytes that are not UTF-8 are E_FORMAT wherever they stand: a name, a field, a skipped value, __metadata__', () => {
  const bad = (before: string, after: string): Uint8Array => {
    const a = new TextEncoder().encode(before);
    const b = new TextEncoder().encode(after);
    const out = new Uint8Array(a.length + 2 + b.length);
    out.set(a);
    out.set([0xc3, 0x28], a.length); // a lead byte and no continuation
    out.set(b, a.length + 2);
    return out;
  };
  const cases: [string, Uint8Array][] = [
    ['name', bad('{"w', `":${EMPTY}}`)],
    ['dtype', bad('{"w":{"dtype":"F', '32","shape":[0],"data_offsets":[0,0]}}')],
    ['extra field', bad('{"w":{"dtype":"F32","shape":[0],"data_offsets":[0,0],"x":["', '"]}}')],
    ['nested key', bad('{"w":{"dtype":"F32","shape":[0],"data_offsets":[0,0],"x":{"', '":1}}}')],
    ['__metadata__', bad('{"__metadata__":{"k":"', `"},"w":${EMPTY}}`)],
  ];
  for (const [where, json] of cases) {
    assert.throws(
      () => parseHeader(json, 8 + json.length, FILE),
      (e: unknown) => e instanceof LowrankError && e.code === 'E_FORMAT' && /not valid UTF-8/.test(e.message),
      where,
    );
  }
  // Outside strings, such a byte breaks the grammar; a byte-order mark is not JSON either (as for JSON.parse).
  const outside = bad(`{"w":${EMPTY}`, '}');
  assert.throws(() => parseHeader(outside, 8 + outside.length, FILE), /not valid JSON.*found byte 0xc3/);
  const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode(`{"w":${EMPTY}}`)]);
  assert.throws(() => parseHeader(bom, 8 + bom.length, FILE), /header must be a JSON object|not valid JSON/);
});

test('valid JSON spelled every way JSON allows reads as JSON.parse reads it', () => {
  const spellings = [
    // whitespace everywhere, keys in any order, unknown keys with nested values skipped
    ` \n{ "b" :\t{ "shape" : [ 2 , 3 ] , "junk": {"x": [1, {"y": null}], "z": "}]"}, "data_offsets" : [ 6 , 30 ] , "dtype" : "F32" } ,\r\n "a":{"dtype":"I16","shape":[3],"data_offsets":[0,6]} } \n `,
    // numbers as JSON.parse reads them: 3.0, 3e0 and 0.3E1 are the integer 3
    `{"a":{"dtype":"I16","shape":[3.0],"data_offsets":[0,6e0]},"b":{"dtype":"F32","shape":[2,0.3E1],"data_offsets":[0.6e1,30]}}`,
    // a repeated field inside an entry: the last counts, as with JSON.parse
    `{"a":{"dtype":"F64","dtype":"I16","shape":[9],"shape":[3],"data_offsets":[0,6]},"b":{"dtype":"F32","shape":[2,3],"data_offsets":[6,30]}}`,
    // escaped field names
    `{"a":{"\\u0064type":"I16","sha\\u0070e":[3],"data_offsets":[0,6]},"b":{"dtype":"F\\u00332","shape":[2,3],"data_offsets":[6,30]}}`,
  ];
  for (const text of spellings) {
    const ref = reference(text);
    const h = parse(text, 30);
    assert.deepEqual(h.entries.map((e) => e.name), ['a', 'b'], text);
    for (const e of h.entries) {
      const r = ref.fields[e.name];
      assert.deepEqual([...e.shape], r.shape, text);
      assert.equal(e.byteOffset - h.dataStart, r.data_offsets[0], text);
      assert.equal(e.byteLength, r.data_offsets[1] - r.data_offsets[0], text);
    }
    assert.deepEqual(h.entries.map((e) => e.dtype), ['i16', 'f32'], text);
  }
});

test('duplicate names are refused: adjacent, far apart, and spelled differently', () => {
  const many = Array.from({ length: 50_000 }, (_, i) => `"t${i}":${EMPTY}`).join(',');
  const cases: [string, string][] = [
    [`{"a":${EMPTY},"a":${EMPTY}}`, 'a'],
    [`{"a":${EMPTY},${many},"a":${EMPTY}}`, 'a'],
    [`{${many},"t49999":${EMPTY}}`, 't49999'],
    [`{"a":${EMPTY},"\\u0061":${EMPTY}}`, 'a'],
    [`{"é":${EMPTY},"\\u00e9":${EMPTY}}`, 'é'],
    [`{"x\\/y":${EMPTY},"x/y":${EMPTY}}`, 'x/y'],
    [`{"__metadata__":{},"__metadata__":{}}`, '__metadata__'],
    // the first name repeated is reported, not the first name that has a repeat
    [`{"p":${EMPTY},"q":${EMPTY},"q":${EMPTY},"p":${EMPTY}}`, 'q'],
  ];
  for (const [text, name] of cases) {
    assert.doesNotThrow(() => JSON.parse(text) as unknown, 'JSON.parse itself takes the duplicate silently');
    assertFormatError(text, new RegExp(`header names '${name.replace(/[/\\]/g, '\\$&')}' twice`), `${name} in ${text.length} bytes`);
  }
  // Duplicates win over an invalid entry, as when the whole header was parsed first.
  assertFormatError(`{"a":{"dtype":"F17"},"a":${EMPTY}}`, /names 'a' twice/);
});

test('invalid JSON anywhere in the header is E_FORMAT, as JSON.parse refuses it', () => {
  const ok = `"a":${EMPTY}`;
  const broken = [
    '',
    '   ',
    `{${ok}`,
    `{${ok},}`,
    `{${ok}}}`,
    `{${ok}} x`,
    `{'a':${EMPTY}}`,
    `{a:${EMPTY}}`,
    `{"a" ${EMPTY}}`,
    `{"a":{"dtype":"F32","shape":[0,],"data_offsets":[0,0]}}`,
    `{"a":{"dtype":"F32","shape":[01],"data_offsets":[0,0]}}`,
    `{"a":{"dtype":"F32","shape":[1.],"data_offsets":[0,0]}}`,
    `{"a":{"dtype":"F32","shape":[-],"data_offsets":[0,0]}}`,
    `{"a":{"dtype":"F32","shape":[+1],"data_offsets":[0,0]}}`,
    `{"a":{"dtype":"F32","shape":[1e],"data_offsets":[0,0]}}`,
    `{"a":{"dtype":"F32","shape":[NaN],"data_offsets":[0,0]}}`,
    `{"a":{"dtype":"F\\x32","shape":[0],"data_offsets":[0,0]}}`,
    `{"a":{"dtype":"F\\u00g2","shape":[0],"data_offsets":[0,0]}}`,
    `{"a\tb":${EMPTY}}`,
    `{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0],"junk":[[[[]]]}}`,
    `{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0],"junk":{"k"}}}`,
    `{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0],"junk":tru}}`,
    `{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0],"junk":nul}}`,
    `{"__metadata__":{"k":"v",},${ok}}`,
    `{"a":${EMPTY}`.padEnd(40, ' '),
    `{"unterminated`,
    // invalid JSON late wins over an invalid entry early, as when the whole header was parsed first
    `{"a":{"dtype":"F17"},"b":[}`,
  ];
  for (const text of broken) {
    assert.throws(() => JSON.parse(text) as unknown, SyntaxError, `JSON.parse refuses ${text}`);
    assertFormatError(text, /header is not valid JSON/);
  }
  assertFormatError('[1, 2]', /must be a JSON object, found an array/);
  assertFormatError(' "text" ', /must be a JSON object, found string/);
  assertFormatError('null', /must be a JSON object, found null/);
  assertFormatError('true', /must be a JSON object, found boolean/);
});

test('values that fail a check are described without being parsed, however deep', () => {
  const deep = (n: number): string => '['.repeat(n) + ']'.repeat(n);
  assertFormatError(`{"a":{"dtype":"F32","shape":${deep(1_000_000)},"data_offsets":[0,0]}}`, /shape \(an array of 1 items\) is not a list/);
  assertFormatError(`{"a":{"dtype":${deep(1_000_000)},"shape":[0],"data_offsets":[0,0]}}`, /entry has no dtype string/);
  assertFormatError(`{"a":{"dtype":"F32","shape":[0],"data_offsets":{"b":${deep(1_000_000)}}}}`, /data_offsets \(an object\) is not a pair/);
  assertFormatError(`{"a":{"dtype":"F32","shape":[1,"2",3],"data_offsets":[0,0]}}`, /shape \(an array of 3 items\)/);
  assertFormatError(`{"a":{"dtype":"F32","shape":"12","data_offsets":[0,0]}}`, /shape '12' is not a list/);
  assertFormatError(`{"a":{"dtype":"F32","shape":[0],"data_offsets":true}}`, /data_offsets true is not a pair/);
  assertFormatError(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[0, 1.5]}}`, /data_offsets \[0, 1\.5\] is not a pair/);
  assertFormatError(`{"__metadata__":{"k":${deep(1_000_000)}}}`, /__metadata__ value of 'k' is not a string/);
  // A junk key nested a million deep is skipped, the entry read.
  const h = parse(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0],"junk":${deep(1_000_000)}}}`);
  assert.deepEqual(h.entries.map((e) => [e.name, e.dtype, [...e.shape]]), [['a', 'f32', [0]]]);
});

test('__metadata__: read as JSON.parse reads it, up to MAX_METADATA_KEYS keys', () => {
  const meta = Object.fromEntries(Array.from({ length: MAX_METADATA_KEYS }, (_, i) => [`k${i}`, `v${i}`]));
  const text = `{"__metadata__":${JSON.stringify({ ...meta, __proto__x: 'p', 'é\n': 'ü' })}}`;
  assert.throws(() => parse(text), /more than 10000 keys/, 'over the limit by two');
  const within = `{"__metadata__":${JSON.stringify(meta)}}`;
  assert.deepEqual(parse(within).metadata, JSON.parse(within).__metadata__);
  assertFormatError(`{"__metadata__":${JSON.stringify({ ...meta, one: 'more' })}}`, /__metadata__ has more than 10000 keys/);
  // The last of a repeated key counts, and a key named __proto__ stays a key.
  const odd = '{"__metadata__":{"k":1,"k":"s","__proto__":"x","\\u00e9":"e"}}';
  assert.deepEqual(parse(odd).metadata, JSON.parse(odd).__metadata__);
  assert.equal(Object.getPrototypeOf(parse(odd).metadata), Object.prototype);
  assertFormatError('{"__metadata__":{"k":"s","k":1}}', /__metadata__ value of 'k' is not a string/);
  assertFormatError('{"__metadata__":["k"]}', /__metadata__ must be an object of strings/);
});

test('a header of MAX_TENSORS tensors reads; one more is E_LIMIT, raised before the rest is scanned', () => {
  const members = Array.from({ length: MAX_TENSORS }, (_, i) => `"t${i}":${EMPTY}`);
  const at = `{"__metadata__":{"format":"pt"},${members.join(',')}}`;
  const header = parse(at);
  assert.equal(header.entries.length, MAX_TENSORS, '__metadata__ is not a tensor');
  assert.deepEqual(header.metadata, { format: 'pt' });
  // One more tensor, and then invalid JSON: the limit is what is reported, by the scan at that tensor.
  const over = `{${members.join(',')},"one more":${EMPTY},"then": not json`;
  assert.throws(
    () => parse(over),
    (e: unknown) => e instanceof LowrankError && e.code === 'E_LIMIT' && /^hostile\.safetensors.*more than 262144 tensors/.test(e.message),
  );
});

test('NameIndex finds every name and the first repeat as a Map does, also when hashes collide', () => {
  const g = rng(7);
  // Names whose 26-bit hashes collide, found by the birthday bound among random names.
  const byHash = new Map<number, string[]>();
  const names: string[] = [];
  for (let i = 0; i < 40_000; i++) {
    const n = `n${g.uint32().toString(36)}`;
    names.push(n);
    byHash.set(hash26(n), [...(byHash.get(hash26(n)) ?? []), n]);
  }
  const colliding = [...byHash.values()].filter((v) => new Set(v).size > 1);
  assert.ok(colliding.length > 0, 'some names share a hash');
  // Many names sharing one hash, in a scrambled order, with repeats.
  const list = [...names.slice(0, 1000), ...colliding.flat(), ...colliding.flat().reverse(), ...names.slice(0, 1000)];
  for (const l of [names, list]) {
    const idx = new NameIndex(l);
    const first = new Map<string, number>();
    let repeat: { first: number; second: number } | undefined;
    l.forEach((n, i) => {
      if (first.has(n)) repeat ??= { first: first.get(n) ?? -1, second: i };
      else first.set(n, i);
    });
    for (const [n, i] of first) assert.equal(idx.find(n), i, n);
    assert.equal(idx.find('absent'), -1);
    assert.deepEqual(idx.firstDuplicate(), repeat);
    // positionsIn: each name's first position in another list (half of it, shuffled, plus strangers), by merging.
    const other = [...l.filter((_, i) => i % 2 === 0), ...colliding.flat().map((n) => `${n}!`)].reverse();
    const at = new Map<string, number>();
    other.forEach((n, i) => at.has(n) || at.set(n, i));
    assert.deepEqual(Array.from(idx.positionsIn(new NameIndex(other))), l.map((n) => at.get(n) ?? -1));
  }
});
