/** Parsing the numbers of command-line flags, one way for every command (E_USAGE naming the flag). */
import { LowrankError } from '../core/errors.js';

/** A whole number ≥ min, written in digits. */
export function integerFlag(flag: string, text: string, min: number): number {
  const n = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(n) || n < min) throw new LowrankError('E_USAGE', `${flag} must be an integer ≥ ${min}, got '${text}'`);
  return n;
}

/** A finite number > 0. */
export function positiveFlag(flag: string, text: string): number {
  const x = Number(text);
  if (text.trim() === '' || !(x > 0) || !Number.isFinite(x)) throw new LowrankError('E_USAGE', `${flag} must be a positive number, got '${text}'`);
  return x;
}

/** A number in (0, 1]. */
export function fractionFlag(flag: string, text: string): number {
  const f = Number(text);
  if (text.trim() === '' || !(f > 0 && f <= 1)) throw new LowrankError('E_USAGE', `${flag} must be a number in (0, 1], got '${text}'`);
  return f;
}
