/**
 * Property tests (fast-check) of the pure parsers the fuzz suite also reaches through files: any
 * bytes, and any edit of a valid input, end in a result or a typed LowrankError — never another
 * exception. In-process, so a failure shrinks to a minimal input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LowrankError } from '../../src/core/errors.js';
import { tensor } from '../../src/core/tensor.js';
import { encodeNpy, parseNpy } from '../../src/io/npy.js';
import { encodeNpz, parseNpz } from '../../src/io/npz.js';
import { parseHeader } from '../../src/io/safetensors/header.js';
import { loraConfig, loraScaling, isTargetModule, type LoraConfig } from '../../src/io/peft.js';
import { SMALL_PATTERNS } from '../../fuzz/mutate/json.js';

const RUNS = { numRuns: 300, seed: 16 };

/** Runs `f`; a thrown error must be a LowrankError other than E_INTERNAL. */
function typedOrOk(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof LowrankError && e.code !== 'E_INTERNAL', `untyped: ${e instanceof Error ? e.stack : String(e)}`);
  }
}

/** A valid input with bytes overwritten at some positions. */
const edited = (valid: Uint8Array): fc.Arbitrary<Uint8Array> =>
  fc.array(fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }).chain((edits) =>
    fc.nat({ max: valid.length }).map((cut) => {
      const b = valid.slice(0, cut === 0 ? valid.length : cut);
      for (const [i, v] of edits) if (i < b.length) b[i] = v;
      return b;
    }),
  );

const NPY = encodeNpy(tensor('f32', [3, 4], new Float32Array(12).fill(1.5)));
const NPZ = encodeNpz({ a: tensor('f32', [2, 2], new Float32Array(4)), b: tensor('i32', [3], new Int32Array(3)) }, { compress: true });

test('parseNpy: any bytes, and any edit of a valid file, give an array or a typed error', () => {
  fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), edited(NPY)), (b) => typedOrOk(() => parseNpy(b, 'x.npy'))), RUNS);
});

test('parseNpz: any edit of a valid archive gives arrays or a typed error', () => {
  fc.assert(fc.property(edited(NPZ), (b) => typedOrOk(() => parseNpz(b, 'x.npz'))), RUNS);
});

test('safetensors headers: any JSON in the entries gives entries or a typed error', () => {
  const value = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom('F32', 'BF16', 'I64', 'C64', 'F17'), fc.array(fc.integer({ min: -2, max: 2 ** 40 }), { maxLength: 3 }));
  const entry = fc.record({ dtype: value, shape: value, data_offsets: value }, { requiredKeys: [] });
  fc.assert(
    fc.property(fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(entry, value), { maxKeys: 4 }), fc.nat({ max: 1 << 20 }), (header, size) => {
      typedOrOk(() => parseHeader(new TextEncoder().encode(JSON.stringify(header)), size, 'x.safetensors'));
    }),
    RUNS,
  );
});

test('adapter configs: any pattern fields give a config that matches module names, or a typed error', () => {
  const pattern = fc.oneof(fc.constantFrom(...SMALL_PATTERNS), fc.string({ maxLength: 12 }));
  const fields = fc.record(
    {
      r: fc.oneof(fc.integer({ min: -1, max: 64 }), fc.double()),
      target_modules: fc.oneof(pattern, fc.array(pattern, { maxLength: 3 }), fc.constant(null)),
      rank_pattern: fc.dictionary(pattern, fc.oneof(fc.integer({ min: -1, max: 64 }), fc.jsonValue({ maxDepth: 1 })), { maxKeys: 3 }),
      alpha_pattern: fc.dictionary(pattern, fc.double(), { maxKeys: 3 }),
      layers_pattern: fc.oneof(pattern, fc.array(pattern, { maxLength: 2 }), fc.constant(null)),
      layers_to_transform: fc.oneof(fc.integer({ min: -1, max: 3 }), fc.array(fc.nat({ max: 3 }), { maxLength: 2 }), fc.constant(null)),
      modules_to_save: fc.oneof(fc.array(pattern, { maxLength: 2 }), fc.constant(null)),
      exclude_modules: fc.oneof(pattern, fc.array(pattern, { maxLength: 2 }), fc.constant(null)),
    },
    { requiredKeys: [] },
  );
  const name = fc.oneof(fc.constantFrom('model.layers.0.self_attn.q_proj', `model.${'a'.repeat(3000)}.layers.1.v_proj`), fc.string({ maxLength: 30 }));
  fc.assert(
    fc.property(fields, name, (f, module) => {
      typedOrOk(() => {
        // The fields come from a file: their types are what the file says, which loraConfig checks.
        const c = loraConfig(f as Partial<LoraConfig>, 'adapter_config.json');
        loraScaling(c, module);
        isTargetModule(c, module);
      });
    }),
    RUNS,
  );
});
