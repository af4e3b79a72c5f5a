import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { buildProgram } from '../src/cli/main.js';
import { cli } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

test('every command has --help, exit 0', () => {
  const names = buildProgram().commands.map((c) => c.name());
  assert.ok(names.includes('inspect') && names.includes('tour'));
  for (const name of [...names, '']) {
    const r = cli(name === '' ? ['--help'] : [name, '--help']);
    assert.equal(r.code, 0, `${name}: ${r.stderr}`);
    assert.match(r.stdout, /Usage: lowrank/, name);
  }
  assert.match(cli(['--version']).stdout, /^\d+\.\d+\.\d+/);
});

test('usage errors exit 1 with a message and no stack trace', () => {
  for (const args of [['no-such-command'], ['inspect'], ['inspect', 'x', '--no-such-flag'], []]) {
    const r = cli(args);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.ok(r.stderr.length > 0, args.join(' '));
    assert.doesNotMatch(r.stderr, /\n\s+at /, args.join(' '));
  }
  const missing = cli(['inspect', '/no/such/model']);
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, "lowrank: error: /no/such/model: inspecting failed: no such file or folder (ENOENT)\n");
});

test('the tour writes a sharded model, an adapter and an .npy, then inspects them (exit 0)', async (t) => {
  const dir = await tempDir(t);
  const out = join(dir, 'tour');
  const r = cli(['tour', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /1\. wrote a Llama-shaped checkpoint: 39 bf16 tensors, 1\.89 MiB in 4 shards \+ model\.safetensors\.index\.json/);
  assert.match(r.stdout, /2\. wrote a PEFT LoRA adapter: 8 modules/);
  assert.match(r.stdout, /3\. .*bit-exact/);
  assert.deepEqual((await readdir(out)).sort(), ['q_proj.npy', 'tiny-llama', 'tiny-llama-lora']);
  const again = cli(['tour', '--out', out]);
  assert.equal(again.code, 1, 'a second tour into the same folder refuses to overwrite');
  assert.match(again.stderr, /already exists/);
  const inspect = cli(['inspect', join(out, 'tiny-llama-lora'), '--json']);
  assert.equal(inspect.code, 0, inspect.stderr);
  const d = JSON.parse(inspect.stdout) as { kind: string; adapter: { r: number; modules: number } };
  assert.equal(d.kind, 'adapter');
  assert.equal(d.adapter.r, 8);
  const npy = cli(['inspect', join(out, 'q_proj.npy')]);
  assert.equal(npy.code, 0, npy.stderr);
  assert.match(npy.stdout, /q_proj\.npy\s+F32\s+\[128, 128\]\s+64\.0 KiB/);
});

test('doctor reports the backends, the one in use and why; LOWRANK_BACKEND forces one', () => {
  const r = cli(['doctor', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const d = JSON.parse(r.stdout) as { inUse: string; why: string; backends: { name: string; available: boolean }[] };
  assert.ok(d.backends.some((b) => b.name === d.inUse && b.available));
  const js = JSON.parse(cli(['doctor', '--json'], { env: { LOWRANK_BACKEND: 'js' } }).stdout) as typeof d;
  assert.equal(js.inUse, 'js');
  assert.match(js.why, /LOWRANK_BACKEND=js/);
  const bad = cli(['doctor'], { env: { LOWRANK_BACKEND: 'gpu' } });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /unknown backend 'gpu'/);
});

test('--workers sets the compute threads of every backend (before or after the command); a bad value is a usage error', () => {
  for (const args of [['--workers', '1', 'doctor', '--json'], ['doctor', '--json', '--workers=1']]) {
    const r = cli(args);
    assert.equal(r.code, 0, r.stderr);
    const d = JSON.parse(r.stdout) as { native: { available: boolean; threads?: number }; wasm: { available: boolean; threads?: number } };
    assert.ok(d.wasm.available);
    assert.equal(d.wasm.threads, 1);
    if (d.native.available) assert.equal(d.native.threads, 1);
  }
  const bad = cli(['doctor', '--workers', 'two']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--workers must be a positive integer, got 'two'/);
  assert.doesNotMatch(bad.stderr, /at .*\.js:\d+/);
});
