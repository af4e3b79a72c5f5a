/** The finiteness scan every linalg input goes through. */
import type { FloatArray } from '../types.js';

/** True when no element is NaN or ±Inf: x·0 is 0 for finite x and NaN otherwise, summed branch-free. */
export function allFinite(data: FloatArray): boolean {
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  const n = data.length;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    a += data[i] * 0;
    b += data[i + 1] * 0;
    c += data[i + 2] * 0;
    d += data[i + 3] * 0;
  }
  for (; i < n; i++) a += data[i] * 0;
  return a + b + c + d === 0;
}
