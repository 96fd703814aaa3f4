/**
 * The module a pool worker process runs (through spawn()). It imports the
 * pool's task module, opens the task channel and serves three RPC methods:
 * `run` (one call of a task function), `chunk` (a task function over several
 * items, for map and friends), `stopped` (resolves once the task with that id
 * no longer runs, so the pool knows when a cancelled task has really stopped)
 * and `idle` (resolves once no task runs). Several tasks may be in flight.
 *
 * argv: <task module URL> <'shm-ring' | 'stream'> <ring name or '-'> <shm threshold> <pool pid:start or '-'>
 *
 * @internal
 */
import type { Channel } from '../channel/channel.js';
import { ShmRing } from '../channel/transports/shm-ring.js';
import { NoSuchMethodError } from '../errors.js';
import { onShutdown, parentChannel, ready } from '../process/child.js';
import { callContext, expose } from '../rpc/expose.js';
import { serializeError, type WireError } from '../rpc/remote-error.js';
import { runWithContext, type TaskContext } from './context.js';
import { newSegment, pack, unlinkQuietly, unpack, type ShmPack } from './shm-args.js';
import { SharedMemory } from '../shm/shared-memory.js';

const [moduleUrl, transport, ringName, thresholdArg, ownerArg] = process.argv.slice(2) as [string, string, string, string, string];
const threshold = Number(thresholdArg);
/** The pool's process ('<pid>:<start>'): result segments are handed over to it. */
const owner = /^(\d+):(\d+)$/.exec(ownerArg ?? '');
const pool = owner !== null ? { pid: Number(owner[1]), start: Number(owner[2]) } : undefined;

const mod = (await import(moduleUrl)) as Record<string, unknown>;

function lookup(name: string): Function {
  const f = mod[name];
  if (typeof f === 'function') return f;
  // A CommonJS module's exports arrive as `default`.
  const d = mod.default;
  if (d !== null && (typeof d === 'object' || typeof d === 'function') && Object.hasOwn(d, name)) {
    const g = (d as Record<string, unknown>)[name];
    if (typeof g === 'function') return g;
  }
  throw new NoSuchMethodError(`the pool's task module exports no function '${name}'`, name);
}

let running = 0;
let idleWaiters: Array<() => void> = [];
/** The tasks running, by id, with who waits for each to end. */
const active = new Map<number, Array<() => void>>();

function begin(id: number): void {
  running++;
  active.set(id, []);
}

function finished(id: number): void {
  const waiters = active.get(id);
  active.delete(id);
  if (waiters !== undefined) for (const r of waiters) r();
  if (--running === 0) {
    const w = idleWaiters;
    idleWaiters = [];
    for (const r of w) r();
  }
}

/** The reply: the value, with its large binary parts moved into the segment `resultName`. */
function reply(value: unknown, resultName: string, signal: AbortSignal | undefined): [unknown, ShmPack | null] {
  // A cancelled task's reply is discarded: do not leave a segment behind for it.
  if (signal?.aborted) return [undefined, null];
  const out = pack(value, newSegment(resultName), threshold);
  if (out.segment === undefined) return [value, null];
  // The pool opens the segment, copies the values out and removes the name. It owns it from now
  // on: this worker may exit before the pool reads it, and should the pool die first, the
  // registry's sweeps (its tracker, `multiproc clean`) remove it as the pool's.
  if (pool !== undefined) out.segment.handOver(pool);
  else out.segment.disown();
  out.segment.close();
  return [out.value, out.pack];
}

function contextOf(name: string, id: number): { ctx: TaskContext; signal: () => AbortSignal | undefined } {
  const rpc = callContext();
  let used = false;
  const ctx: TaskContext = {
    get signal() {
      used = true;
      return rpc.signal;
    },
    name,
    id,
  };
  return { ctx, signal: () => (used ? rpc.signal : undefined) };
}

/** One batched task's outcome: its value (and where its large parts are), or the error it threw. */
type Outcome = [0, unknown, ShmPack | null] | [1, WireError];
/** Batched async tasks still running when their batch was answered, by id. */
const later = new Map<number, Promise<Outcome>>();

/** A thrown value for a batch reply: as RPC sends it, or its plain form if that cannot be cloned. */
function wireError(err: unknown): WireError {
  const wire = serializeError(err);
  try {
    structuredClone(wire);
    return wire;
  } catch {
    return serializeError(err, 0);
  }
}

// The pool writes large arguments into one segment per worker, reused from task to task (its
// pages stay mapped on both sides); a bigger one comes under a new name.
let argSegment: SharedMemory | undefined;
let argName = '';

function open(tree: unknown, p: ShmPack | null): unknown {
  if (p === null) return tree;
  if (argName !== p.name) {
    argSegment?.close();
    argSegment = undefined;
    argSegment = SharedMemory.open(p.name);
    argName = p.name;
  }
  return unpack(tree, p, false, argSegment).value;
}

const api = {
  async run(name: string, args: unknown[], p: ShmPack | null, resultName: string, id: number): Promise<[unknown, ShmPack | null]> {
    begin(id);
    try {
      const { ctx, signal } = contextOf(name, id);
      const fn = lookup(name);
      const value = await runWithContext(ctx, fn, undefined, open(args, p) as unknown[]);
      return reply(value, resultName, signal());
    } finally {
      finished(id);
    }
  },

  async chunk(name: string, items: unknown[], star: boolean, p: ShmPack | null, resultName: string, id: number): Promise<[unknown, ShmPack | null]> {
    begin(id);
    try {
      const { ctx, signal } = contextOf(name, id);
      const fn = lookup(name);
      const list = open(items, p) as unknown[];
      const results = new Array<unknown>(list.length);
      for (let i = 0; i < list.length; i++) {
        const r = runWithContext(ctx, fn, undefined, star ? (list[i] as unknown[]) : [list[i]]);
        // Await only promises: a microtask per item would dominate chunks of tiny items.
        results[i] = r !== null && typeof r === 'object' && typeof (r as { then?: unknown }).then === 'function' ? await r : r;
      }
      return reply(results, resultName, signal());
    } finally {
      finished(id);
    }
  },

  /**
   * Several `run` tasks in one message (tiny tasks when the pool has a backlog): each item is
   * `[name, args, resultName, id]`; the reply has one `[0, value, pack]` or `[1, error]` per item,
   * or `[2]` for an async task still running: its outcome is fetched with `result(id)`, so that a
   * slow task does not hold up the replies of the others.
   */
  async batch(items: [string, unknown[], string, number][]): Promise<Array<Outcome | [2]>> {
    const out = new Array<Outcome | [2]>(items.length);
    let pending: Array<[number, number, Promise<Outcome>]> | undefined;
    for (let i = 0; i < items.length; i++) {
      const [name, args, resultName, id] = items[i]!;
      begin(id);
      let r: unknown;
      try {
        const { ctx } = contextOf(name, id);
        r = runWithContext(ctx, lookup(name), undefined, args);
      } catch (err) {
        out[i] = [1, wireError(err)];
        finished(id);
        continue;
      }
      if (r !== null && typeof r === 'object' && typeof (r as { then?: unknown }).then === 'function') {
        const p = Promise.resolve(r)
          .then(
            (v): Outcome => {
              // A result that cannot be packed (a getter that throws, /dev/shm full) is this
              // task's error, as on the synchronous path; thrown from here it would reject `p`.
              try {
                return [0, ...reply(v, resultName, undefined)];
              } catch (err) {
                return [1, wireError(err)];
              }
            },
            (err: unknown): Outcome => [1, wireError(err)],
          )
          .finally(() => finished(id));
        (pending ??= []).push([i, id, p]);
      } else {
        try {
          out[i] = [0, ...reply(r, resultName, undefined)];
        } catch (err) {
          out[i] = [1, wireError(err)];
        }
        finished(id);
      }
    }
    if (pending !== undefined) {
      // One turn of the event loop for async tasks that end at once; the others are fetched later.
      const settled = new Map<number, Outcome>();
      // Should `p` still reject, the result() call that fetches it carries the rejection; an
      // unhandled one here would end the worker and every task in flight on it.
      for (const [i, , p] of pending) void p.then((o) => settled.set(i, o), () => {});
      await new Promise((resolve) => setImmediate(resolve));
      for (const [i, id, p] of pending) {
        const o = settled.get(i);
        if (o !== undefined) out[i] = o;
        else {
          out[i] = [2];
          later.set(id, p);
        }
      }
    }
    return out;
  },

  /** The outcome of a batched async task that was still running when its batch was answered. */
  result(id: number): Promise<Outcome> | undefined {
    const p = later.get(id);
    later.delete(id);
    return p;
  },

  stopped(id: number): Promise<void> | undefined {
    const waiters = active.get(id);
    return waiters === undefined ? undefined : new Promise<void>((resolve) => waiters.push(resolve));
  },

  idle(): Promise<void> | undefined {
    return running === 0 ? undefined : new Promise<void>((resolve) => idleWaiters.push(resolve));
  },
};

const channel: Channel<unknown> = transport === 'shm-ring' ? ShmRing.openDuplex(ringName, { codec: 'structured' }) : await parentChannel('tasks');
if (transport === 'shm-ring') {
  // Both sides have the rings mapped now: their names can go (the pool removes them too, once ready).
  unlinkQuietly(`/mp.ring.${ringName}.0`);
  unlinkQuietly(`/mp.ring.${ringName}.1`);
}
const server = expose(api, channel);
onShutdown(async () => {
  await server.close();
  await channel.close();
});
ready();
