/** The adapter methods by name. */
import { LowrankError } from '../core/errors.js';
import { ALL_METHODS } from './all.js';
import type { AdapterMethod } from './types.js';

/** The names of every method, sorted. */
export function methodNames(): string[] {
  return ALL_METHODS.map((m) => m.name).sort();
}

/** The method of this name; E_USAGE naming the others when there is none. */
export function getMethod(name: string): AdapterMethod {
  const m = ALL_METHODS.find((x) => x.name === name);
  if (m === undefined) throw new LowrankError('E_USAGE', `unknown method '${name}' (known: ${methodNames().join(', ')})`);
  return m;
}
