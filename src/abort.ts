/**
 * One 'abort' listener per AbortSignal, however many waits share it. A
 * caller who passes one signal to thousands of calls, tasks or receives would
 * otherwise add a listener each, and Node warns past ten
 * (MaxListenersExceededWarning).
 * @internal
 */
const callbacks = new WeakMap<AbortSignal, Set<() => void>>();

/** Calls `fn` once when `signal` aborts; returns a function that forgets it. @internal */
export function onAbort(signal: AbortSignal, fn: () => void): () => void {
  let set = callbacks.get(signal);
  if (set === undefined) {
    const s = new Set<() => void>();
    set = s;
    callbacks.set(signal, s);
    signal.addEventListener(
      'abort',
      () => {
        callbacks.delete(signal);
        for (const f of s) f();
      },
      { once: true },
    );
  }
  const own = set;
  own.add(fn);
  return () => {
    own.delete(fn);
  };
}
