/**
 * The child's side of spawn(): the control channel, the channels the parent
 * handed over, readiness, shutdown and error reports. The bootstrap module
 * (bootstrap.ts) creates it before the user's module runs; the public child
 * API (child.ts) reads it. Addon-free, so that it works in a sandbox that
 * forbids native addons.
 *
 * @internal
 */
import type { Channel } from '../channel/channel.js';
import { ClosedError } from '../errors.js';
import { CONTROL_FD, ControlChannel, serializeError, type SystemMessage } from './control.js';
import { openDescriptor, type ChannelDescriptor, type ParentChannelOptions } from './transports.js';
import { socketFromFd } from './socket-pair-channel.js';

/** A function run when the parent asks the child to shut down. */
export type ShutdownHandler = (info: { timeout: number }) => void | Promise<void>;

const STATE = Symbol.for('multiproc.child.v1');

/** @internal */
export class ChildRuntime {
  readonly control: ControlChannel;
  readonly parentPid: number;
  name = '';
  descriptors: Record<string, ChannelDescriptor> = {};
  exitWithParent = true;
  /** The descriptors the parent passed (3 and up). */
  fds: number[] = [];
  readonly opened = new Map<string, Promise<Channel<any>>>();
  readonly shutdownHandlers: ShutdownHandler[] = [];
  readySent = false;
  shuttingDown = false;
  readonly #reported = new WeakSet<object>();
  readonly #hello: Promise<void>;

  constructor(parentPid: number, exitWithParent: boolean) {
    this.parentPid = parentPid;
    this.exitWithParent = exitWithParent;
    let resolveHello!: () => void;
    let rejectHello!: (err: Error) => void;
    this.#hello = new Promise<void>((resolve, reject) => {
      resolveHello = resolve;
      rejectHello = reject;
    });
    const socket = socketFromFd(CONTROL_FD);
    this.control = new ControlChannel(socket, 'control channel (fd 3)', (m) => this.#onSystem(m, resolveHello));
    const gone = (): void => {
      rejectHello(new ClosedError('the parent closed the control channel before it said hello'));
      this.#parentGone();
    };
    socket.once('end', gone);
    socket.once('close', gone);
    // Hold the event loop open until the parent said hello; afterwards the
    // socket is unref'd again and only waiting receives hold it.
    socket.ref();
    this.#hello.then(
      () => socket.unref(),
      () => {},
    );
  }

  /** Resolves once the parent's hello arrived. */
  hello(): Promise<void> {
    return this.#hello;
  }

  #onSystem(m: SystemMessage, resolveHello: () => void): void {
    switch (m.kind) {
      case 'hello':
        this.name = m.name;
        this.descriptors = m.channels;
        this.exitWithParent = m.exitWithParent;
        this.fds = m.fds;
        resolveHello();
        break;
      case 'shutdown':
        void this.shutdown(m.timeout);
        break;
      case 'ping':
        // Answered from the event loop: a child stuck in synchronous code cannot answer.
        if (typeof m.seq === 'number') this.control.sendSystem({ kind: 'pong', seq: m.seq });
        break;
      default:
        break;
    }
  }

  /** The control channel ended without a shutdown request: the parent is gone. */
  #parentGone(): void {
    if (this.shuttingDown || !this.exitWithParent) return;
    // As the parent-death signal would have: no handlers, no exit code.
    process.kill(process.pid, 'SIGKILL');
  }

  /** Tells the parent about an error (once per error object). */
  report(err: unknown, origin: string, phase: 'load' | 'run'): void {
    if (typeof err === 'object' && err !== null) {
      if (this.#reported.has(err)) return;
      this.#reported.add(err);
    }
    try {
      this.control.sendSystemNow({ kind: 'error', error: serializeError(err), origin, phase }, CONTROL_FD);
    } catch {
      // Reporting is best effort; the exit status still tells.
    }
  }

  ready(value: unknown): void {
    if (this.readySent) return;
    // Written at once when the socket is idle, so that `ready(); process.exit()` still tells.
    this.control.sendSystemNow({ kind: 'ready', value }, CONTROL_FD);
    this.readySent = true;
  }

  channel(name: string, options: ParentChannelOptions<any>): Promise<Channel<any>> {
    if (name === 'control') return Promise.resolve(this.control);
    let p = this.opened.get(name);
    if (p === undefined) {
      const d = this.descriptors[name];
      if (d === undefined) {
        const known = ['control', ...Object.keys(this.descriptors)].map((n) => `'${n}'`).join(', ');
        const e = new TypeError(`The parent passed no channel named '${name}'; it passed: ${known}`) as TypeError & { code: string };
        e.code = 'ERR_INVALID_ARG_VALUE';
        return Promise.reject(e);
      }
      p = openDescriptor(d, { name, options });
      this.opened.set(name, p);
      // A failed open may be retried (with other options, say).
      p.catch(() => this.opened.delete(name));
    }
    return p;
  }

  async shutdown(timeout: number): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    let failed = false;
    for (const handler of [...this.shutdownHandlers]) {
      try {
        await handler({ timeout });
      } catch (err) {
        failed = true;
        this.report(err, 'shutdown', 'run');
      }
    }
    const closing: Promise<unknown>[] = [];
    for (const p of this.opened.values()) closing.push(p.then((c) => c.close()).catch(() => {}));
    await Promise.race([Promise.allSettled(closing), new Promise((r) => setTimeout(r, Math.min(timeout, 1000)).unref())]);
    await this.control.flushed(Math.min(timeout, 1000));
    process.exit(failed ? 1 : undefined);
  }
}

/** The runtime of this process, when a multiproc parent spawned it. @internal */
export function currentRuntime(): ChildRuntime | undefined {
  return (globalThis as unknown as Record<symbol, ChildRuntime | undefined>)[STATE];
}

/** @internal */
export function installRuntime(runtime: ChildRuntime): void {
  (globalThis as unknown as Record<symbol, ChildRuntime | undefined>)[STATE] = runtime;
}
