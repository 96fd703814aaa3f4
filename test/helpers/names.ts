/** Unique names per test, recognisable by the leak guard. */
import { randomBytes } from 'node:crypto';

/** Prefix of every name a test creates. */
export const TEST_PREFIX = 'mpt';

let counter = 0;

/** Every name uniqueName() handed out in this process (the leak guard derives System V keys from them). */
export const issuedNames: string[] = [];

/** A fresh name like 'mpt-1234-7-a1b2c3' (valid for SharedMemory and named primitives). */
export function uniqueName(tag = 'x'): string {
  counter++;
  // The runner's id (scripts/test.mjs) lets its end-of-suite leak check tell this run's names from another's.
  const run = process.env.MULTIPROC_TEST_RUN === undefined ? '' : `r${process.env.MULTIPROC_TEST_RUN}-`;
  const name = `${TEST_PREFIX}-${tag}-${process.pid}-${counter}-${run}${randomBytes(3).toString('hex')}`;
  issuedNames.push(name);
  return name;
}
