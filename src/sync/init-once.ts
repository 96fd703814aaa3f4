/**
 * One-time initialization of a primitive that has parameters (a semaphore's
 * count, a barrier's parties), in memory that several processes or threads
 * may reach at the same moment.
 *
 * The word at `index` goes 0 (zeroed memory) -> BUSY -> READY. Whoever moves
 * it off 0 writes the initial state; everyone else waits for READY. Any other
 * value means the memory holds something else. Placed memory records no kind:
 * another primitive with 0 in this word is not detected (see docs/api/sync.md).
 *
 * @internal
 */
import { native } from '../binding/native.js';
import { IncompatibleError, TimeoutError } from '../errors.js';
import { wake } from './wait.js';

const BUSY = 1;
const READY = 0x4d505301;
/** The initializer only writes a few words; this long means it died half-way. */
const INIT_WAIT_MS = 2000;

/**
 * Runs `init` when this caller is the first to find the memory zeroed, else
 * waits until the first caller is done. Returns true when this caller initialized.
 * @internal
 */
export function initOnce(buffer: SharedArrayBuffer, i32: Int32Array, index: number, label: string, init: () => void): boolean {
  const deadline = performance.now() + INIT_WAIT_MS;
  for (;;) {
    const seen = Atomics.compareExchange(i32, index, 0, BUSY);
    if (seen === 0) {
      try {
        init();
      } catch (err) {
        // Hand the memory back zeroed, so that a caller with good parameters can initialize it.
        Atomics.store(i32, index, 0);
        wake(buffer, index * 4);
        throw err;
      }
      Atomics.store(i32, index, READY);
      wake(buffer, index * 4);
      return true;
    }
    if (seen === READY) return false;
    if (seen !== BUSY) throw new IncompatibleError(`${label}: the memory is neither zeroed nor initialized as one`);
    const left = deadline - performance.now();
    if (left <= 0) throw new TimeoutError(`${label} was never initialized by the thread that started to`, INIT_WAIT_MS);
    native.futexWait(buffer, index * 4, BUSY, Math.ceil(left));
  }
}
