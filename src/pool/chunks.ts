/**
 * The engine of `map`, `imap` and friends, shared by the local and the NATS
 * pool: cuts `items` into chunks, keeps at most `window` chunks in flight
 * through `submit`, and yields each chunk's results (in order, or as they
 * come). Memory stays bounded on endless sources; leaving early cancels the
 * chunks in flight (their signal aborts) and closes the source.
 * @internal
 */
import { setMaxListeners } from 'node:events';
import { AbortError, typeError } from '../errors.js';

/** A starmap item must be an array of arguments. */
export function checkStarItem(item: unknown): void {
  if (!Array.isArray(item)) {
    throw typeError('ERR_INVALID_ARG_TYPE', `starmap: every item must be an array of arguments. Received ${item === null ? 'null' : typeof item}`);
  }
}

export async function* chunkStream(
  submit: (chunk: unknown[], signal: AbortSignal) => Promise<unknown[]>,
  items: Iterable<unknown> | AsyncIterable<unknown>,
  chunkSize: number,
  ordered: boolean,
  window: number,
  signal: AbortSignal | undefined,
  star: boolean,
): AsyncGenerator<unknown[], void, undefined> {
  const isAsync = typeof (items as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
  // An array is cut into slices; other sources are pulled item by item (awaited only when async).
  const array = Array.isArray(items) ? (items as unknown[]) : undefined;
  let position = 0;
  const source: Iterator<unknown> | AsyncIterator<unknown> | undefined =
    array !== undefined ? undefined : isAsync ? (items as AsyncIterable<unknown>)[Symbol.asyncIterator]() : (items as Iterable<unknown>)[Symbol.iterator]();
  const controller = new AbortController();
  // One listener per chunk in flight.
  setMaxListeners(0, controller.signal);
  const onAbort = (): void => controller.abort(signal!.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  type Outcome = { ok: true; value: unknown[] } | { ok: false; error: unknown };
  const done = new Map<number, Outcome>();
  let wake: (() => void) | undefined;
  let submitted = 0;
  let consumed = 0;
  let exhausted = false;
  try {
    for (;;) {
      if (signal?.aborted) throw new AbortError('the operation was aborted', { cause: signal.reason });
      while (!exhausted && submitted - consumed < window) {
        let chunk: unknown[];
        if (array !== undefined) {
          chunk = array.slice(position, position + chunkSize);
          position += chunk.length;
          if (position >= array.length) exhausted = true;
          if (star) for (const item of chunk) checkStarItem(item);
        } else {
          chunk = [];
          while (chunk.length < chunkSize) {
            const r = isAsync ? await source!.next() : (source as Iterator<unknown>).next();
            if (r.done === true) {
              exhausted = true;
              break;
            }
            if (star) checkStarItem(r.value);
            chunk.push(r.value);
          }
        }
        if (chunk.length === 0) break;
        const seq = submitted++;
        submit(chunk, controller.signal).then(
          (value) => {
            done.set(seq, { ok: true, value });
            wake?.();
          },
          (error: unknown) => {
            done.set(seq, { ok: false, error });
            wake?.();
          },
        );
      }
      if (consumed === submitted && exhausted) return;
      let next: number | undefined;
      if (ordered) {
        if (done.has(consumed)) next = consumed;
      } else {
        for (const k of done.keys()) {
          next = k;
          break;
        }
      }
      if (next === undefined) {
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        continue;
      }
      const outcome = done.get(next)!;
      done.delete(next);
      consumed++;
      if (!outcome.ok) {
        if (signal?.aborted) throw new AbortError('the operation was aborted', { cause: signal.reason });
        throw outcome.error;
      }
      yield outcome.value;
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    if (submitted > consumed) controller.abort(new AbortError('the iteration ended early'));
    if (!exhausted) await source?.return?.();
  }
}

/** The items of the chunks, one by one. Leaving early closes `chunks` (which cancels what is in flight). @internal */
export async function* flatten<R>(chunks: AsyncGenerator<unknown[], void, undefined>): AsyncGenerator<R, void, undefined> {
  for await (const chunk of chunks) for (const v of chunk) yield v as R;
}
