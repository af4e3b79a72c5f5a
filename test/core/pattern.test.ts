/**
 * Patterns from users and files on RE2: the same matches as JavaScript's engine on patterns both
 * read, linear time on a catastrophically backtracking one, typed errors for what RE2 cannot read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePattern, patternOf } from '../../src/core/pattern.js';
import { LowrankError } from '../../src/core/errors.js';
import { parseLayerTargets, selectLayers } from '../../src/tools/targets.js';

const NAMES = ['model.layers.0.self_attn.q_proj', 'model.layers.11.mlp.down_proj', 'lm_head', 'transformer.h.3.attn.c_attn', 'q_proj', ''];
const SOURCES = ['q_proj', '.*\\.(q|v)_proj$', 'layers\\.(\\d+)\\.', '^lm_head$', 'h\\.[0-9]+\\.attn', '(mlp|attn)\\.\\w+', 'x?'];

test('RE2 patterns find, fully match and capture as JavaScript RegExps do on the same sources', () => {
  for (const source of SOURCES) {
    const p = compilePattern(source);
    const some = new RegExp(source);
    const all = new RegExp(`^(?:${source})$`);
    for (const name of NAMES) {
      assert.equal(p.test(name), some.test(name), `${source} in '${name}'`);
      assert.equal(p.whole(name), all.test(name), `${source} is all of '${name}'`);
      const m = some.exec(name);
      assert.deepEqual(p.exec(name), m === null ? null : Array.from(m, (g) => g ?? null), `${source} groups of '${name}'`);
    }
  }
});

// The timeout is a hang guard: a backtracking engine would not end in the life of the machine.
test('a catastrophically backtracking pattern ends on a 5,000-character name, unmatched (a backtracking engine takes ~2^n steps)', { timeout: 30_000 }, () => {
  const name = `${'a'.repeat(5000)}`; // JavaScript's engine would need ~2^5000 steps for (a*)*b on this
  const p = patternOf('(a*)*b');
  assert.equal(p.test(name), false);
  assert.equal(p.whole(name), false);
  const layers = selectLayers([{ name: `${'a'.repeat(5000)}.weight`, shape: [2, 2], dtype: 'f32' as const }], parseLayerTargets('(a*)*b'));
  assert.deepEqual(layers, []);
});

test('what RE2 cannot read is a typed error naming the pattern: E_USAGE for a user, the code and file asked for a file', () => {
  for (const source of ['(?=x)q_proj', '(a)\\1', '(unclosed']) {
    assert.throws(() => patternOf(source), (e: unknown) => e instanceof LowrankError && e.code === 'E_USAGE' && e.message.includes(`targets '${source}'`) && e.message.includes('RE2'));
    assert.throws(
      () => compilePattern(source, `pattern '${source}'`, 'E_FORMAT', { file: 'adapter_config.json' }),
      (e: unknown) => e instanceof LowrankError && e.code === 'E_FORMAT' && e.context.file === 'adapter_config.json' && !e.message.includes('\n'),
    );
  }
});

test("a caller's RegExp keeps JavaScript's engine (its flags too), without the stateful g flag", () => {
  const p = patternOf(/Q_PROJ/gi);
  assert.equal(p.test('model.q_proj'), true);
  assert.equal(p.test('model.q_proj'), true, 'no lastIndex carried between calls');
  assert.equal(p.whole('q_proj'), true);
  assert.equal(p.whole('model.q_proj'), false);
});
