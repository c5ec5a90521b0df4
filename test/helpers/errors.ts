import { RoostError } from '../../src/errors.js';

/** The RoostError `f` throws (fails the test when it throws nothing or something else). */
export function caught(f: () => unknown): RoostError {
  try {
    f();
  } catch (e) {
    if (e instanceof RoostError) return e;
    throw e;
  }
  throw new Error('expected a RoostError');
}
