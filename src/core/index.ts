/** Tensors, element types and their conversions, errors, the seeded RNG, and patterns on RE2. */
export * from './dtype.js';
export * from './tensor.js';
export * from './errors.js';
export * from './rng.js';
export * from './pattern.js';
