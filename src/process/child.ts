/**
 * The child's side of spawn(): what a module started by `spawn()` uses to
 * talk to its parent. Addon-free: also available as `multiproc/child`, which
 * loads no native code (for sandboxes started with `permissions.addons: false`).
 *
 * ```ts
 * import { parentChannel, ready, onShutdown } from 'multiproc/child';
 * const jobs = await parentChannel('jobs');
 * onShutdown(async () => { await flushCaches(); });
 * ready();
 * for await (const job of jobs) await jobs.send(await work(job));
 * ```
 */
import type { Channel } from '../channel/channel.js';
import { typeError, validateOptions, validateString } from '../errors.js';
import { currentRuntime, type ChildRuntime, type ShutdownHandler } from './child-runtime.js';
import type { ParentChannelOptions } from './transports.js';

export type { ShutdownHandler } from './child-runtime.js';
export type { ParentChannelOptions } from './transports.js';

function notChild(what: string): TypeError {
  return typeError('ERR_INVALID_STATE', `${what}: this process was not started by multiproc's spawn(), so it has no parent to talk to`);
}

/** The parent process, as seen from a child started by `spawn()`. */
export class ParentPort {
  readonly #runtime: ChildRuntime;

  /** @internal */
  constructor(runtime: ChildRuntime) {
    this.#runtime = runtime;
  }

  /** The name the parent gave this child (`spawn`'s `name` option). */
  get name(): string {
    return this.#runtime.name;
  }

  /** The parent's process id. */
  get pid(): number {
    return this.#runtime.parentPid;
  }

  /**
   * The control channel (structured codec), the other end of the parent's
   * `handle.control`. Message types 1 to 2^31 - 2; the highest is the library's.
   * Closing it ends only this view: the library keeps using the socket.
   */
  get control(): Channel<unknown> {
    return this.#runtime.control;
  }

  /** Names of the channels the parent passed, 'control' first. */
  get channelNames(): string[] {
    return ['control', ...Object.keys(this.#runtime.descriptors)];
  }

  /** @see parentChannel */
  channel<T = unknown>(name: string, options?: ParentChannelOptions<T>): Promise<Channel<T>> {
    return parentChannel(name, options);
  }

  /** @see ready */
  ready(value?: unknown): void {
    ready(value);
  }

  /** @see onShutdown */
  onShutdown(handler: ShutdownHandler): () => void {
    return onShutdown(handler);
  }
}

/**
 * The parent of this process when `spawn()` started it, else `null` (a
 * process started any other way). Set before the child's module runs.
 */
export const parent: ParentPort | null = ((): ParentPort | null => {
  const r = currentRuntime();
  return r === undefined ? null : new ParentPort(r);
})();

/**
 * The channel the parent passed under `name` in `spawn(..., { channels })`,
 * opened on first use (later calls return the same channel). `'control'` is
 * the control channel. The first call's `options` win.
 *
 * Errors (rejections): `ERR_INVALID_STATE` (not a spawned child, or no
 * transport of the descriptor's kind is registered here),
 * `ERR_INVALID_ARG_VALUE` (no channel of that name; the message lists the
 * names), `ERR_INVALID_ARG_TYPE`, and what the transport's `open` raises.
 */
export async function parentChannel<T = unknown>(name: string, options?: ParentChannelOptions<T>): Promise<Channel<T>> {
  validateString(name, 'name');
  const opts = validateOptions<ParentChannelOptions<T>>(options, 'options', ['codec']);
  const r = currentRuntime();
  if (r === undefined) throw notChild(`parentChannel('${name}')`);
  return r.channel(name, opts) as Promise<Channel<T>>;
}

/**
 * Tells the parent that this child is ready: the parent's `handle.ready`
 * resolves with `value` (structured-cloneable). Later calls do nothing.
 *
 * Errors: `ERR_INVALID_STATE` (not a spawned child); a `DataCloneError`
 * when `value` cannot be cloned.
 */
export function ready(value?: unknown): void {
  const r = currentRuntime();
  if (r === undefined) throw notChild('ready()');
  r.ready(value);
}

/**
 * Registers `handler` to run when the parent asks this child to shut down
 * (`handle.close()`). Handlers run one after another, in registration order,
 * and may be async; then the channels the child opened are closed and the
 * process exits (code 0, or 1 when a handler threw; the error goes to the
 * parent). A handler that outlasts `info.timeout` ms is cut short by the
 * parent's SIGTERM. Returns a function that unregisters the handler.
 *
 * Errors: `ERR_INVALID_STATE` (not a spawned child), `ERR_INVALID_ARG_TYPE`.
 */
export function onShutdown(handler: ShutdownHandler): () => void {
  if (typeof handler !== 'function') throw typeError('ERR_INVALID_ARG_TYPE', 'The "handler" argument must be of type function');
  const r = currentRuntime();
  if (r === undefined) throw notChild('onShutdown()');
  r.shutdownHandlers.push(handler);
  return () => {
    const i = r.shutdownHandlers.indexOf(handler);
    if (i >= 0) r.shutdownHandlers.splice(i, 1);
  };
}
