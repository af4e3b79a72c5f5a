import assert from 'node:assert/strict';
import { LowrankError, type ErrorCode } from '../../src/core/errors.js';

/** Asserts that `f` throws a LowrankError of `code` whose message matches `message`. */
export function assertThrowsCode(f: () => unknown, code: ErrorCode, message: RegExp): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof LowrankError, `expected a LowrankError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  });
}
