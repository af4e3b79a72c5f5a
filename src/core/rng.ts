/**
 * A seeded random number generator (xoshiro128**, seeded through splitmix32), so every random
 * input in tests and every random init reproduces from its seed.
 */

/** A seeded stream of random numbers. */
export interface Rng {
  /** Uniform 32-bit unsigned integer. */
  uint32(): number;
  /** Uniform in [0, 1). */
  uniform(): number;
  /** Standard normal (Box-Muller). */
  normal(): number;
  /** Fills an array with N(mean, std^2) samples and returns it. */
  fillNormal<T extends Float32Array | Float64Array>(out: T, mean?: number, std?: number): T;
  /** Fills an array with U(lo, hi) samples and returns it. */
  fillUniform<T extends Float32Array | Float64Array>(out: T, lo?: number, hi?: number): T;
}

/** A new generator from an integer seed. */
export function rng(seed: number): Rng {
  let x = seed >>> 0;
  const split = (): number => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let s0 = split();
  let s1 = split();
  let s2 = split();
  let s3 = split();
  if ((s0 | s1 | s2 | s3) === 0) s0 = 1;
  let spare: number | undefined;

  const uint32 = (): number => {
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11);
    return result;
  };
  const uniform = (): number => (uint32() * 2 ** 21 + (uint32() >>> 11)) * 2 ** -53;
  const normal = (): number => {
    if (spare !== undefined) {
      const v = spare;
      spare = undefined;
      return v;
    }
    let u = 0;
    while (u === 0) u = uniform();
    const v = uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
  return {
    uint32,
    uniform,
    normal,
    fillNormal(out, mean = 0, std = 1) {
      // The same stream as calling normal() per element, two values per Box-Muller step.
      const n = out.length;
      let i = 0;
      if (spare !== undefined && n > 0) out[i++] = mean + std * normal();
      for (; i + 1 < n; i += 2) {
        let u = 0;
        while (u === 0) u = uniform();
        const v = uniform();
        const r = Math.sqrt(-2 * Math.log(u));
        out[i] = mean + std * (r * Math.cos(2 * Math.PI * v));
        out[i + 1] = mean + std * (r * Math.sin(2 * Math.PI * v));
      }
      if (i < n) out[i] = mean + std * normal();
      return out;
    },
    fillUniform(out, lo = 0, hi = 1) {
      for (let i = 0; i < out.length; i++) out[i] = lo + (hi - lo) * uniform();
      return out;
    },
  };
}

function rotl(v: number, k: number): number {
  return (v << k) | (v >>> (32 - k));
}
