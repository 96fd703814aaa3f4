/**
 * The async waits in progress on one primitive handle, so that `close()` can
 * end them: each wait loop's cleanup runs at once (while the memory is still
 * mapped, so shared counters stay right) and the wait rejects with a
 * {@link ClosedError}.
 *
 * @internal
 */
import { ClosedError } from '../errors.js';
import { driveAsync, WaitCancel, type DriveOptions, type WaitLoop } from './wait.js';

interface Entry {
  loop: Generator<unknown, unknown, boolean>;
  controller: WaitCancel;
  /** The inner loop returned on its own: its result is real. */
  finished: boolean;
  closed: boolean;
}

function* tracked<R>(loop: WaitLoop<R>, entry: Entry): WaitLoop<R> {
  const r = yield* loop;
  entry.finished = true;
  return r;
}

/** @internal */
export class PendingWaits {
  readonly #entries = new Set<Entry>();
  readonly #others = new Set<() => void>();

  /**
   * Tracks a wait that is not a wait loop: `close` is called (once) by
   * {@link PendingWaits.closeAll}. Returns the function that stops tracking it.
   */
  track(close: () => void): () => void {
    this.#others.add(close);
    return () => this.#others.delete(close);
  }

  /** Runs `loop` like {@link driveAsync}, ended by {@link PendingWaits.closeAll}. */
  async drive<R>(buffer: SharedArrayBuffer, loop: WaitLoop<R>, opts: DriveOptions): Promise<R> {
    const controller = new WaitCancel();
    const entry: Entry = { loop: undefined as never, controller, finished: false, closed: false };
    const wrapped = tracked(loop, entry);
    entry.loop = wrapped;
    const user = opts.signal;
    const forward = (): void => controller.abort(user?.reason);
    if (user?.aborted) forward();
    else user?.addEventListener('abort', forward, { once: true });
    this.#entries.add(entry);
    try {
      const r = await driveAsync(buffer, wrapped, { ...opts, signal: controller });
      if (entry.closed) throw new ClosedError(`${opts.what} was closed while waiting`);
      return r;
    } catch (err) {
      if (entry.closed) throw new ClosedError(`${opts.what} was closed while waiting`);
      throw err;
    } finally {
      this.#entries.delete(entry);
      user?.removeEventListener('abort', forward);
    }
  }

  /** Ends every pending wait: cleanup now, rejection with ClosedError soon after. */
  closeAll(): void {
    for (const entry of this.#entries) {
      if (entry.finished) continue;
      entry.closed = true;
      entry.loop.return(undefined);
      entry.controller.abort();
    }
    this.#entries.clear();
    const others = [...this.#others];
    this.#others.clear();
    for (const close of others) close();
  }
}
