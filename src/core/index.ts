/** Tensors, element types and their conversions, errors, and the seeded RNG. */
export * from './dtype.js';
export * from './tensor.js';
export * from './errors.js';
export * from './rng.js';
