/**
 * setTimeout for delays of any length. Node cannot arm a timer beyond
 * 2^31 - 1 ms (about 24.8 days): it warns and fires after 1 ms instead, so a
 * wait with a long timeout would time out at once or wake every millisecond.
 *
 * @internal
 */

/** The longest delay setTimeout holds, ms. @internal */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A timer armed by {@link setLongTimeout}. @internal */
export interface LongTimeout {
  clear(): void;
  /** Lets the process exit while only this timer is pending (as Timeout.unref()). */
  unref(): void;
}

/** Calls `fn` once `ms` have passed, re-arming in steps of at most MAX_TIMER_MS. @internal */
export function setLongTimeout(fn: () => void, ms: number): LongTimeout {
  if (ms <= MAX_TIMER_MS) {
    const t = setTimeout(fn, ms);
    return { clear: () => clearTimeout(t), unref: () => void t.unref() };
  }
  const end = performance.now() + ms;
  let timer: NodeJS.Timeout;
  let ref = true;
  const arm = (delay: number): void => {
    timer = setTimeout(() => {
      const left = end - performance.now();
      if (left > 0) arm(Math.min(Math.ceil(left), MAX_TIMER_MS));
      else fn();
    }, delay);
    if (!ref) timer.unref();
  };
  arm(MAX_TIMER_MS);
  return {
    clear: () => clearTimeout(timer),
    unref: () => {
      ref = false;
      timer.unref();
    },
  };
}
