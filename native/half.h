/* float32 <-> bfloat16 / float16 bit conversions shared by lowrank.c and skinny.c. */
#ifndef LOWRANK_HALF_H
#define LOWRANK_HALF_H

#include <stdint.h>

/*
 * float32 <-> bfloat16 / float16 bit conversions, the same as src/core/dtype.ts (round to nearest
 * even; NaN stays NaN, quieted; f16 overflow to Inf, with subnormals). Written branch-light so
 * that the compiler vectorizes the bf16 loops: converting a weight is memory-bound, and a
 * JavaScript loop over it ran at 5-8 ns per element on the 2-core development machine.
 */
static inline uint16_t bf16_of(uint32_t b) {
  const uint16_t rounded = (uint16_t)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
  const uint16_t quiet = (uint16_t)((b >> 16) | 0x40u);
  return (b & 0x7fffffffu) > 0x7f800000u ? quiet : rounded;
}

static inline uint16_t f16_of(uint32_t b) {
  const uint32_t s = (b >> 16) & 0x8000u;
  const uint32_t e = (b >> 23) & 0xffu;
  const uint32_t m = b & 0x7fffffu;
  if (e == 255) return (uint16_t)(m == 0 ? s | 0x7c00u : s | 0x7e00u | (m >> 13));
  const int exp = (int)e - 127;
  if (exp > 15) return (uint16_t)(s | 0x7c00u);
  if (exp >= -14) {
    uint32_t h = ((uint32_t)(exp + 15) << 10) | (m >> 13);
    const uint32_t rem = m & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u) == 1u)) h++;
    return (uint16_t)(s | h);
  }
  if (exp < -25) return (uint16_t)s;
  const uint32_t full = m | 0x800000u;
  const int shift = -exp - 1;
  uint32_t h = full >> shift;
  const uint32_t rem = full & ((1u << shift) - 1u);
  const uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (h & 1u) == 1u)) h++;
  return (uint16_t)(s | h);
}

static inline uint32_t f32_bits_of_f16(uint16_t h) {
  const uint32_t s = (uint32_t)(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1fu;
  const uint32_t m = h & 0x3ffu;
  if (e == 31) return s | 0x7f800000u | (m << 13);
  if (e != 0) return s | ((e + 112) << 23) | (m << 13);
  if (m == 0) return s;
  /* subnormal: normalize the mantissa */
  int shift = 0;
  uint32_t mm = m;
  while ((mm & 0x400u) == 0) {
    mm <<= 1;
    shift++;
  }
  return s | ((uint32_t)(113 - shift) << 23) | ((mm & 0x3ffu) << 13);
}

#endif
