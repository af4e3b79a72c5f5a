/**
 * memoryFileSystem() against Node's disk as the reference: the error codes of the calls io makes
 * (each scenario run on a real temporary folder with node:fs/promises and on a memory file system),
 * reads by range from Blobs, positioned writes, list and exchange, and — the point of it — the same
 * library calls (writeModel, writeAdapter, extractLora, openModel, openAdapter) writing byte for
 * byte the same files in memory as on disk, with failed atomic writes leaving nothing behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as disk from 'node:fs/promises';
import { tempDir } from '../helpers/tmp.js';
import { memoryFileSystem, type MemoryFileSystem } from '../../src/io/memoryFs.js';
import { fs, useFileSystem } from '../../src/io/fs.js';
import { nodeFileSystem } from '../../src/io/nodeFs.js';
import { repairTarget, writeDirAtomic, writeTextFile } from '../../src/io/atomic.js';
import { join } from '../../src/io/paths.js';
import { openModel, writeModel } from '../../src/io/hf.js';
import { openAdapter, writeAdapter, type LoraModuleTensors } from '../../src/io/peft.js';
import { writeSafetensors, type TensorSource } from '../../src/io/safetensors/writer.js';
import { extractLora } from '../../src/tools/extract.js';
import { llamaConfig, llamaTensors, randomWeights, type LlamaShape } from '../../src/io/synthetic.js';
import { tensor } from '../../src/core/tensor.js';
import type { Storage } from '../../src/core/dtype.js';
import { rng } from '../../src/core/rng.js';

/** The error code a call fails with, or 'ok'. */
async function outcome(call: () => Promise<unknown>): Promise<string> {
  try {
    const r = await call();
    // A handle that opened is closed again, so that the trees can be compared after.
    if (typeof r === 'object' && r !== null && 'close' in r && typeof r.close === 'function') await (r as { close(): Promise<void> }).close();
    return 'ok';
  } catch (e) {
    return String((e as { code?: unknown }).code ?? `no code: ${String(e)}`);
  }
}

/** The calls the scenarios make, on one side: the disk through node:fs/promises, or a memory file system. */
interface Side {
  mkdir(path: string, opts?: { recursive?: boolean }): Promise<unknown>;
  put(path: string, text: string): Promise<void>;
  open(path: string, flags: 'r' | 'wx'): Promise<unknown>;
  readdir(path: string): Promise<string[]>;
  readFile(path: string): Promise<Uint8Array>;
  rm(path: string, opts?: { recursive?: boolean; force?: boolean }): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  copyFile(from: string, to: string): Promise<void>;
  stat(path: string): Promise<{ isDirectory(): boolean }>;
}

const nodeSide: Side = {
  mkdir: (p, o) => disk.mkdir(p, o),
  put: (p, text) => disk.writeFile(p, text),
  open: (p, flags) => disk.open(p, flags),
  readdir: (p) => disk.readdir(p),
  readFile: (p) => disk.readFile(p),
  rm: (p, o) => disk.rm(p, o),
  rename: (a, b) => disk.rename(a, b),
  copyFile: (a, b) => disk.copyFile(a, b),
  stat: (p) => disk.stat(p),
};

/** The memory file system is a Side as it is, but for putting a file's text. */
function memorySide(m: MemoryFileSystem): Side {
  return { ...m, put: async (p, text) => m.add(p, new Blob([text])) };
}

/** Every folder ('name/') and file ('name=contents') under `dir`, sorted. */
async function tree(s: Side, dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await s.readdir(dir)).sort()) {
    const path = `${dir}/${name}`;
    if ((await s.stat(path)).isDirectory()) out.push(`${rel}${name}/`, ...(await tree(s, path, `${rel}${name}/`)));
    else out.push(`${rel}${name}=${new TextDecoder().decode(await s.readFile(path))}`);
  }
  return out;
}

/** The tree every scenario starts from. */
async function setUp(s: Side, root: string): Promise<void> {
  await s.mkdir(`${root}/dir/sub`, { recursive: true });
  await s.put(`${root}/dir/sub/one`, 'one');
  await s.mkdir(`${root}/empty`);
  await s.mkdir(`${root}/full`);
  await s.put(`${root}/full/x`, 'x');
  await s.put(`${root}/f`, 'file');
  await s.put(`${root}/g`, 'other file');
}

/** A scenario: the call, given a path maker under the scenario's root, and whether it must fail (on both sides). */
const SCENARIOS: [string, (s: Side, p: (rel: string) => string) => Promise<unknown>, 'fails' | 'succeeds'][] = [
  ['open of a missing file', (s, p) => s.open(p('nope'), 'r'), 'fails'],
  ['open under a missing folder', (s, p) => s.open(p('no/x'), 'r'), 'fails'],
  ['open under a file', (s, p) => s.open(p('f/x'), 'r'), 'fails'],
  ["'wx' over an existing file", (s, p) => s.open(p('f'), 'wx'), 'fails'],
  ["'wx' over a folder", (s, p) => s.open(p('empty'), 'wx'), 'fails'],
  ["'wx' in a missing folder", (s, p) => s.open(p('no/x'), 'wx'), 'fails'],
  ["'wx' under a file", (s, p) => s.open(p('f/x'), 'wx'), 'fails'],
  ["'wx' of a new file", (s, p) => s.open(p('new'), 'wx'), 'succeeds'],
  ['readdir of a file', (s, p) => s.readdir(p('f')), 'fails'],
  ['readdir of a missing folder', (s, p) => s.readdir(p('nope')), 'fails'],
  ['readFile of a folder', (s, p) => s.readFile(p('dir')), 'fails'],
  ['rm of a folder without recursive', (s, p) => s.rm(p('dir')), 'fails'],
  ['rm of a folder with force but not recursive', (s, p) => s.rm(p('dir'), { force: true }), 'fails'],
  ['rm of a folder, recursive', (s, p) => s.rm(p('dir'), { recursive: true }), 'succeeds'],
  ['rm of a missing file', (s, p) => s.rm(p('nope')), 'fails'],
  ['rm of a missing file with force', (s, p) => s.rm(p('nope'), { force: true }), 'succeeds'],
  ['rm under a file with force', (s, p) => s.rm(p('f/x'), { force: true }), 'fails'],
  ['rename of a folder over a non-empty folder', (s, p) => s.rename(p('dir'), p('full')), 'fails'],
  ['rename of a folder over an empty folder', (s, p) => s.rename(p('dir'), p('empty')), 'succeeds'],
  ['rename of a file over a folder', (s, p) => s.rename(p('f'), p('empty')), 'fails'],
  ['rename of a folder over a file', (s, p) => s.rename(p('empty'), p('f')), 'fails'],
  ['rename of a folder into itself', (s, p) => s.rename(p('dir'), p('dir/sub/x')), 'fails'],
  ['rename of a missing path', (s, p) => s.rename(p('nope'), p('x')), 'fails'],
  ['rename of a file over a file', (s, p) => s.rename(p('f'), p('g')), 'succeeds'],
  ['mkdir of an existing folder', (s, p) => s.mkdir(p('dir')), 'fails'],
  ['mkdir of an existing file', (s, p) => s.mkdir(p('f')), 'fails'],
  ['mkdir in a missing folder', (s, p) => s.mkdir(p('no/x')), 'fails'],
  ['mkdir recursive over an existing folder', (s, p) => s.mkdir(p('dir'), { recursive: true }), 'succeeds'],
  ['mkdir recursive of new nested folders', (s, p) => s.mkdir(p('n1/n2/n3'), { recursive: true }), 'succeeds'],
  ['mkdir recursive over an existing file', (s, p) => s.mkdir(p('f'), { recursive: true }), 'fails'],
  ['mkdir recursive through a file', (s, p) => s.mkdir(p('f/x'), { recursive: true }), 'fails'],
  ['copyFile of a missing file', (s, p) => s.copyFile(p('nope'), p('x')), 'fails'],
  ['copyFile of a folder', (s, p) => s.copyFile(p('dir'), p('x')), 'fails'],
  ['copyFile over a folder', (s, p) => s.copyFile(p('f'), p('empty')), 'fails'],
  ['copyFile to a new name', (s, p) => s.copyFile(p('f'), p('copy')), 'succeeds'],
  ['stat under a file', (s, p) => s.stat(p('f/x')), 'fails'],
];

test('each call fails with the code Node gives on a real folder (or succeeds where Node does), leaving the same tree', async (t) => {
  const tmp = await tempDir(t);
  for (const [i, [name, call, expect]] of SCENARIOS.entries()) {
    await t.test(name, async () => {
      const onDisk = `${tmp}/s${i}`;
      await disk.mkdir(onDisk);
      await setUp(nodeSide, onDisk);
      const mem = memoryFileSystem();
      const inMemory = '/work/s';
      const memSide = memorySide(mem);
      await memSide.mkdir(inMemory, { recursive: true });
      await setUp(memSide, inMemory);
      assert.deepEqual(await tree(memSide, inMemory), await tree(nodeSide, onDisk), 'the starting trees differ');

      const nodeCode = await outcome(() => call(nodeSide, (rel) => `${onDisk}/${rel}`));
      const memCode = await outcome(() => call(memSide, (rel) => `${inMemory}/${rel}`));
      assert.equal(nodeCode === 'ok', expect === 'succeeds', `the scenario is not what it says on disk (${nodeCode})`);
      assert.equal(memCode, nodeCode, `memory gives ${memCode}, Node ${nodeCode}`);
      assert.deepEqual(await tree(memSide, inMemory), await tree(nodeSide, onDisk), 'the trees differ after the call');
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Reads by range, positioned writes.

const N = 1000;
const content = Uint8Array.from({ length: N }, (_, i) => (i * 7 + 3) & 255);

/** A Blob that refuses to be read whole: only its slices may be read. */
class RangesOnly extends Blob {
  override async arrayBuffer(): Promise<ArrayBuffer> {
    throw new Error('read whole');
  }
  override async text(): Promise<string> {
    throw new Error('read whole');
  }
  override stream(): ReturnType<Blob['stream']> {
    throw new Error('read whole');
  }
}

test('a Blob-backed file reads by ranges (offset, length, position), short at the end, 0 past it, as Node reads the same bytes', async (t) => {
  const tmp = await tempDir(t);
  await disk.writeFile(`${tmp}/data.bin`, content);
  const mem = memoryFileSystem();
  // Three parts, so that reads span parts of the Blob.
  mem.add('/in/data.bin', new RangesOnly([content.slice(0, 300), content.slice(300, 700), content.slice(700)]));
  const fm = await mem.open('/in/data.bin', 'r');
  const fd = await disk.open(`${tmp}/data.bin`, 'r');
  t.after(() => fd.close());
  const st = await fm.stat();
  assert.equal(st.size, N);
  assert.ok(st.isFile() && !st.isDirectory());
  const cases: [offset: number, length: number, position: number][] = [
    [0, 10, 0], [5, 100, 250], [0, 400, 299], [17, 301, 699], [3, 50, 980], [0, 10, 999], [0, 10, N], [0, 10, 5000], [10, 0, 17], [0, N, 0], [50, N, 0],
  ];
  for (const [offset, length, position] of cases) {
    const label = `read(offset ${offset}, length ${length}, position ${position})`;
    const [a, b] = [new Uint8Array(N + 100).fill(0xee), new Uint8Array(N + 100).fill(0xee)];
    const { bytesRead } = await fm.read(a, offset, length, position);
    const ref = await fd.read(b, offset, length, position);
    const n = Math.max(0, Math.min(length, N - position));
    assert.equal(bytesRead, n, label);
    assert.equal(bytesRead, ref.bytesRead, `${label}: Node read ${ref.bytesRead}`);
    const want = new Uint8Array(N + 100).fill(0xee);
    want.set(content.subarray(position, position + n), offset);
    assert.deepEqual(a, want, label);
    assert.deepEqual(a, b, `${label}: Node read other bytes`);
  }
  await fm.close();
  await assert.rejects(fm.read(new Uint8Array(4), 0, 4, 0), { code: 'EBADF' });
});

/** Writes `ops` (bytes at a position; or text through writeFile) to a new file through a handle, then closes it. */
type WriteOp = { at: number; bytes: number[]; from?: number } | { text: string };
async function writeThrough(open: (flags: 'wx') => Promise<{ write: (b: Uint8Array, o: number, l: number, p: number) => Promise<unknown>; writeFile: (t: string) => Promise<void>; stat: () => Promise<{ size: number }>; close: () => Promise<void> }>, ops: readonly WriteOp[]): Promise<number> {
  const fh = await open('wx');
  for (const op of ops) {
    if ('text' in op) {
      await fh.writeFile(op.text);
      continue;
    }
    // The bytes sit at `from` in a larger buffer (write's offset), which is scribbled over after the write.
    const from = op.from ?? 0;
    const buf = new Uint8Array(from + op.bytes.length + 3).fill(0xaa);
    buf.set(op.bytes, from);
    await fh.write(buf, from, op.bytes.length, op.at);
    buf.fill(0x55);
  }
  const size = (await fh.stat()).size;
  await fh.close();
  return size;
}

test('positioned writes (in order, out of order with a gap, overlapping) read back after close as Node writes them', async (t) => {
  const tmp = await tempDir(t);
  const mem = memoryFileSystem();
  await mem.mkdir('/out');
  const cases: [string, WriteOp[], number[]][] = [
    ['in order', [{ at: 0, bytes: [1, 2, 3, 4] }, { at: 4, bytes: [5, 6], from: 7 }, { at: 6, bytes: [7, 8, 9] }], [1, 2, 3, 4, 5, 6, 7, 8, 9]],
    ['out of order, with a gap', [{ at: 10, bytes: [9, 9, 9] }, { at: 0, bytes: [1, 2] }, { at: 4, bytes: [5, 5], from: 1 }], [1, 2, 0, 0, 5, 5, 0, 0, 0, 0, 9, 9, 9]],
    ['starting past 0', [{ at: 3, bytes: [7] }], [0, 0, 0, 7]],
    ['overlapping: the later write wins', [{ at: 0, bytes: [1, 1, 1, 1] }, { at: 1, bytes: [2, 2] }, { at: 3, bytes: [3, 3] }], [1, 2, 2, 3, 3]],
    ['writeFile twice (UTF-8)', [{ text: 'héllo ' }, { text: 'wörld' }], [...new TextEncoder().encode('héllo wörld')]],
    ['nothing', [], []],
  ];
  for (const [i, [name, ops, want]] of cases.entries()) {
    const expected = Uint8Array.from(want);
    const memSize = await writeThrough(() => mem.open(`/out/${i}`, 'wx'), ops);
    const diskSize = await writeThrough(() => disk.open(`${tmp}/${i}`, 'wx'), ops);
    const fromDisk = new Uint8Array(await disk.readFile(`${tmp}/${i}`));
    assert.deepEqual(fromDisk, expected, `${name}: Node wrote other bytes (the expectation is wrong)`);
    assert.equal(memSize, expected.length, `${name}: size while open`);
    assert.equal(memSize, diskSize, `${name}: Node's size while open`);
    assert.deepEqual(new Uint8Array(await mem.blob(`/out/${i}`).arrayBuffer()), expected, name);
    assert.deepEqual(await mem.readFile(`/out/${i}`), expected, `${name}: readFile`);
    assert.equal((await mem.stat(`/out/${i}`)).size, expected.length, `${name}: stat after close`);
    const fh = await mem.open(`/out/${i}`, 'r');
    const back = new Uint8Array(expected.length + 4);
    const { bytesRead } = await fh.read(back, 0, back.length, 0);
    await fh.close();
    assert.deepEqual(back.subarray(0, bytesRead), expected, `${name}: read through a handle`);
  }
  // A closed writer takes no more writes, on either side.
  const [fm, fd] = [await mem.open('/out/closed', 'wx'), await disk.open(`${tmp}/closed`, 'wx')];
  await fm.close();
  await fd.close();
  const codes = await Promise.all([fm, fd].map((h) => outcome(() => h.write(Uint8Array.of(1), 0, 1, 0))));
  assert.equal(codes[1], 'EBADF');
  assert.equal(codes[0], codes[1]);
});

// ---------------------------------------------------------------------------------------------
// list and exchange.

test('list gives every file under a folder with its relative path, sorted, as a walk of the same files on disk finds them', async (t) => {
  const files: Record<string, string> = { 'b.txt': 'b', 'a/z.bin': 'z', 'a/c/d': 'd', A: 'upper', '.hidden': 'h', 'ä': 'umlaut', '10': 'ten', '9': 'nine', 'deep/er/still/x.y': 'deep' };
  const mem = memoryFileSystem();
  const tmp = await tempDir(t);
  for (const [rel, text] of Object.entries(files)) {
    mem.add(`/L/${rel}`, new Blob([text]));
    const path = `${tmp}/${rel}`;
    await disk.mkdir(path.slice(0, path.lastIndexOf('/')), { recursive: true });
    await disk.writeFile(path, text);
  }
  await mem.mkdir('/L/empty');
  await disk.mkdir(`${tmp}/empty`);
  const listed = mem.list('/L');
  // Sorted by UTF-16 code units, written out by hand.
  assert.deepEqual(listed.map((f) => f.path), ['.hidden', '10', '9', 'A', 'a/c/d', 'a/z.bin', 'b.txt', 'deep/er/still/x.y', 'ä']);
  const onDisk = (await disk.readdir(tmp, { recursive: true, withFileTypes: true }))
    .filter((d) => d.isFile())
    .map((d) => `${d.parentPath}/${d.name}`.slice(tmp.length + 1))
    .sort();
  assert.deepEqual(listed.map((f) => f.path), onDisk);
  for (const f of listed) assert.equal(await f.blob.text(), files[f.path], f.path);
  assert.deepEqual(mem.list('/L/a').map((f) => f.path), ['c/d', 'z.bin']);
  assert.deepEqual(mem.list('/L/empty/'), []);
  assert.deepEqual(mem.list('L/deep/').map((f) => f.path), ['er/still/x.y']);
  assert.throws(() => mem.list('/L/b.txt'), { code: 'ENOTDIR' });
  assert.throws(() => mem.list('/nope'), { code: 'ENOENT' });
});

test('exchange swaps two folders (their whole subtrees); with one missing it moves nothing and says false', async () => {
  const mem = memoryFileSystem();
  mem.add('/X/one', new Blob(['1']));
  mem.add('/X/sub/two', new Blob(['2']));
  mem.add('/P/Y/three', new Blob(['3']));
  const contents = async (dir: string): Promise<string[]> => Promise.all(mem.list(dir).map(async (f) => `${f.path}=${await f.blob.text()}`));
  assert.equal(mem.exchange('/X', '/P/Y'), true);
  assert.deepEqual(await contents('/X'), ['three=3']);
  assert.deepEqual(await contents('/P/Y'), ['one=1', 'sub/two=2']);
  assert.deepEqual(await contents('/'), ['P/Y/one=1', 'P/Y/sub/two=2', 'X/three=3']);
  assert.equal(mem.exchange('/X', '/nope'), false);
  assert.equal(mem.exchange('/nope', '/X'), false);
  assert.deepEqual(await contents('/'), ['P/Y/one=1', 'P/Y/sub/two=2', 'X/three=3']);
});

// ---------------------------------------------------------------------------------------------
// The same library calls on disk and in memory.

const SHAPE: LlamaShape = { hidden_size: 16, intermediate_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 64 };
const CONFIG = llamaConfig(SHAPE, 'float32');

async function storage(s: TensorSource): Promise<Storage> {
  return typeof s.data === 'function' ? await s.data() : s.data;
}

const baseWeights = (): TensorSource[] => randomWeights(llamaTensors(SHAPE), { seed: 2, dtype: 'f32', std: 0.2 });

/** The base with a rank-2 update on every q_proj and v_proj, and a changed final norm. */
function tunedWeights(): TensorSource[] {
  return baseWeights().map((src, k) => {
    const planted = /(q_proj|v_proj)\.weight$/.test(src.name);
    if (!planted && src.name !== 'model.norm.weight') return src;
    return {
      ...src,
      data: async () => {
        const d = Float32Array.from((await storage(src)) as Float32Array);
        if (!planted) return d.map((x) => x + 0.5);
        const [out, inF] = src.shape;
        const g = rng(700 + k);
        const [u1, u2, v1, v2] = [out, out, inF, inF].map((n) => g.fillNormal(new Float64Array(n)));
        for (let i = 0; i < out; i++) for (let j = 0; j < inF; j++) d[i * inF + j] += 0.05 * u1[i] * v1[j] + 0.02 * u2[i] * v2[j];
        return d;
      },
    };
  });
}

function adapterModules(): LoraModuleTensors[] {
  const g = rng(91);
  const mod = (name: string, r: number, inF: number, outF: number): LoraModuleTensors => ({
    name,
    A: tensor('f32', [r, inF], g.fillNormal(new Float32Array(r * inF))),
    B: tensor('f32', [outF, r], g.fillNormal(new Float32Array(outF * r))),
  });
  return [mod('model.layers.0.self_attn.q_proj', 2, 16, 16), mod('model.layers.1.mlp.down_proj', 2, 32, 16)];
}

const bytesOf = (d: Storage): Uint8Array => new Uint8Array(d.buffer, d.byteOffset, d.byteLength).slice();

/**
 * The job, under `root` on whichever file system is installed: a base, a sharded fine-tune, a
 * hand-made adapter and an extracted one; then every tensor read back through openModel/openAdapter.
 */
async function job(root: string): Promise<Map<string, Uint8Array>> {
  const [base, tuned] = [join(root, 'models', 'base'), join(root, 'models', 'tuned')];
  await writeModel(base, baseWeights(), { config: CONFIG });
  const { shards } = await writeModel(tuned, tunedWeights(), { config: CONFIG, maxShardSize: 8192 });
  assert.ok(shards.length >= 2, 'the fine-tune should be sharded');
  await writeAdapter(join(root, 'adapters', 'hand'), { r: 2, lora_alpha: 4, base_model_name_or_path: 'tiny-llama' }, adapterModules());
  const report = await extractLora({ base, tuned, out: join(root, 'adapters', 'extracted'), rank: 3, saveModules: true, baseModelName: 'tiny-llama' });
  assert.equal(report.modules.length, 4, 'the planted q_proj and v_proj updates');
  assert.deepEqual(report.savedModules, ['model.norm']);

  const read = new Map<string, Uint8Array>();
  for (const dir of ['models/base', 'models/tuned']) {
    const m = await openModel(join(root, dir));
    try {
      for (const t of m.tensors) read.set(`${dir}:${t.name}`, bytesOf((await m.read(t.name)).data));
    } finally {
      await m.close();
    }
  }
  for (const dir of ['adapters/hand', 'adapters/extracted']) {
    const a = await openAdapter(join(root, dir));
    try {
      for (const m of a.modules) read.set(`${dir}:module ${m.name} r=${m.r} alpha=${m.alpha}`, new Uint8Array());
      for (const e of a.file.entries) read.set(`${dir}:${e.name}`, bytesOf((await a.read(e.name)).data));
    } finally {
      await a.close();
    }
  }
  return read;
}

/** Every file under `dir` on disk: path relative to it → bytes. */
async function diskFiles(dir: string): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  const entries = await disk.readdir(dir, { recursive: true, withFileTypes: true });
  for (const d of entries.filter((e) => e.isFile()).sort((a, b) => (`${a.parentPath}/${a.name}` < `${b.parentPath}/${b.name}` ? -1 : 1))) {
    const path = `${d.parentPath}/${d.name}`;
    out.set(path.slice(dir.length + 1), new Uint8Array(await disk.readFile(path)));
  }
  return out;
}

/** Runs `f` with `mem` as io's file system, putting back the one before even when `f` fails. */
async function inMemory<T>(mem: MemoryFileSystem, f: () => Promise<T>): Promise<T> {
  const before = useFileSystem(mem);
  try {
    return await f();
  } finally {
    if (before !== undefined) useFileSystem(before);
  }
}

test('writeModel, writeAdapter and extractLora write byte for byte the same files in memory as on disk, and read back the same', async (t) => {
  assert.equal(fs(), nodeFileSystem);
  const tmp = await tempDir(t);
  const onDisk = await job(tmp);
  const diskOut = await diskFiles(tmp);

  const mem = memoryFileSystem();
  const inMem = await inMemory(mem, () => job('/work/job'));
  assert.equal(fs(), nodeFileSystem, 'the disk is io\'s file system again');
  const memOut = new Map<string, Uint8Array>();
  for (const f of mem.list('/work/job')) memOut.set(f.path, new Uint8Array(await f.blob.arrayBuffer()));

  // The files each writer is known to make (and no temporaries).
  const names = [...diskOut.keys()];
  for (const want of ['models/base/config.json', 'models/base/model.safetensors', 'models/tuned/config.json', 'models/tuned/model.safetensors.index.json', 'adapters/hand/adapter_config.json', 'adapters/hand/adapter_model.safetensors', 'adapters/extracted/adapter_config.json', 'adapters/extracted/adapter_model.safetensors']) {
    assert.ok(names.includes(want), `${want} was not written on disk`);
  }
  assert.ok(names.filter((n) => /^models\/tuned\/model-\d{5}-of-\d{5}\.safetensors$/.test(n)).length >= 2, 'no shards');
  assert.deepEqual(names.filter((n) => n.includes('lowrank-')), [], 'temporaries left on disk');

  assert.deepEqual([...memOut.keys()], names, 'other files in memory than on disk');
  for (const [path, bytes] of diskOut) {
    const m = memOut.get(path) as Uint8Array;
    assert.equal(m.length, bytes.length, `${path}: ${m.length} bytes in memory, ${bytes.length} on disk`);
    assert.ok(Buffer.from(m).equals(Buffer.from(bytes)), `${path} differs`);
  }

  // Read back: the same tensors on both sides, and the base's are the weights it was written from.
  assert.deepEqual([...inMem.keys()], [...onDisk.keys()]);
  for (const [k, v] of onDisk) assert.ok(Buffer.from(inMem.get(k) as Uint8Array).equals(Buffer.from(v)), `${k} reads differently`);
  for (const src of baseWeights()) assert.deepEqual(inMem.get(`models/base:${src.name}`), bytesOf(await storage(src)), src.name);
  for (const m of adapterModules()) {
    assert.ok(inMem.has(`adapters/hand:module ${m.name} r=2 alpha=4`), m.name);
    assert.deepEqual(inMem.get(`adapters/hand:base_model.model.${m.name}.lora_A.weight`), bytesOf(m.A.data), m.name);
  }
});

const failing = (): TensorSource[] => [
  { name: 'fine', dtype: 'f32', shape: [2], data: Float32Array.of(1, 2) },
  {
    name: 'broken',
    dtype: 'f32',
    shape: [2],
    data: () => {
      throw new Error('the source broke');
    },
  },
];

test('an atomic write that fails midway leaves no file and no temporary in memory (nor on disk), and an old output as it was', async (t) => {
  const tmp = await tempDir(t);
  await assert.rejects(writeModel(`${tmp}/out/model`, failing(), { config: CONFIG }), /the source broke/);
  assert.deepEqual(await disk.readdir(`${tmp}/out`), [], 'Node: the reference leaves nothing either');

  const mem = memoryFileSystem();
  await inMemory(mem, async () => {
    await assert.rejects(writeModel('/out/model', failing(), { config: CONFIG }), /the source broke/);
    assert.deepEqual(await mem.readdir('/out'), []);
    assert.deepEqual(mem.list('/out'), []);

    // Over an existing output: the old one stays, whole.
    await writeModel('/out/model', baseWeights(), { config: CONFIG });
    const before = await Promise.all(mem.list('/out').map(async (f) => [f.path, new Uint8Array(await f.blob.arrayBuffer())] as const));
    assert.deepEqual(before.map(([p]) => p), ['model/config.json', 'model/model.safetensors']);
    await assert.rejects(writeModel('/out/model', failing(), { config: CONFIG, overwrite: true }), /the source broke/);
    assert.deepEqual(await mem.readdir('/out'), ['model']);
    const after = await Promise.all(mem.list('/out').map(async (f) => [f.path, new Uint8Array(await f.blob.arrayBuffer())] as const));
    assert.deepEqual(after, before);

    // A single file written atomically.
    await assert.rejects(writeSafetensors('/out/lone.safetensors', failing()), /the source broke/);
    assert.deepEqual(await mem.readdir('/out'), ['model']);
    assert.deepEqual(mem.list('/out').map((f) => f.path), ['model/config.json', 'model/model.safetensors']);
  });
  assert.equal(fs(), nodeFileSystem);
});

test('exchange refuses a folder and one inside it (as renameat2 does), leaving the tree whole', async () => {
  const m = memoryFileSystem();
  m.add('/x/y/f', new Blob(['f']));
  m.add('/x/g', new Blob(['g']));
  assert.equal(m.exchange('/x', '/x/y'), false);
  assert.equal(m.exchange('/x/y', '/x'), false);
  assert.equal(m.exchange('/x', '/nowhere/z'), false, 'a missing parent is false, not a throw');
  assert.deepEqual(m.list('/').map((f) => f.path), ['x/g', 'x/y/f']);
});

test('in memory, an atomic folder write replaces the old folder (exchange, then the old one removed) and repair removes a dead writer\'s temporaries', async () => {
  const m = memoryFileSystem();
  const before = useFileSystem(m);
  try {
    await writeDirAtomic('/out', (dir) => writeTextFile(join(dir, 'a.txt'), 'old'));
    await writeDirAtomic('/out', (dir) => writeTextFile(join(dir, 'b.txt'), 'new'), { overwrite: true });
    assert.deepEqual(m.list('/').map((f) => f.path), ['out/b.txt'], 'only the new folder, no temporaries');
    assert.equal(await m.blob('/out/b.txt').text(), 'new');
    // A temporary of writer 2 (the memory fs says no other writer is alive) and an old folder aside.
    m.add('/.out.lowrank-tmp-2-0a1b2c3d/part', new Blob(['half']));
    m.add('/.out.lowrank-old-2-0a1b2c3d/b.txt', new Blob(['older']));
    await repairTarget('/out');
    assert.deepEqual(m.list('/').map((f) => f.path), ['out/b.txt'], 'the dead writer\'s temporary and the old folder beside a complete target are gone');
  } finally {
    if (before !== undefined) useFileSystem(before);
  }
});
