/**
 * Adapter methods initialized from the weights (PiSSA, MiLoRA, OLoRA, ...): one file per method,
 * each exporting `method` (an {@link AdapterMethod}); the registry finds them by name.
 */
export { getMethod, methodNames } from './registry.js';
export { scalingOf, type AdapterMethod, type InitOptions, type LayerInit } from './types.js';
