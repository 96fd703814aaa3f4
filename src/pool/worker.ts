/**
 * The module a pool worker process runs (through spawn()). It imports the
 * pool's task module, opens the task channel and serves three RPC methods:
 * `run` (one call of a task function), `chunk` (a task function over several
 * items, for map and friends) and `idle` (resolves once no task runs, so the
 * pool knows when a cancelled task has really stopped).
 *
 * argv: <task module URL> <'shm-ring' | 'stream'> <ring name or '-'> <shm threshold>
 *
 * @internal
 */
import type { Channel } from '../channel/channel.js';
import { ShmRing } from '../channel/transports/shm-ring.js';
import { NoSuchMethodError } from '../errors.js';
import { onShutdown, parentChannel, ready } from '../process/child.js';
import { callContext, expose } from '../rpc/expose.js';
import { runWithContext, type TaskContext } from './context.js';
import { newSegment, pack, unlinkQuietly, unpack, type ShmPack } from './shm-args.js';
import { SharedMemory } from '../shm/shared-memory.js';

const [moduleUrl, transport, ringName, thresholdArg] = process.argv.slice(2) as [string, string, string, string];
const threshold = Number(thresholdArg);

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

function finished(): void {
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
  // The pool opens the segment, copies the values out and removes the name.
  out.segment.disown();
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
    running++;
    try {
      const { ctx, signal } = contextOf(name, id);
      const fn = lookup(name);
      const value = await runWithContext(ctx, fn, undefined, open(args, p) as unknown[]);
      return reply(value, resultName, signal());
    } finally {
      finished();
    }
  },

  async chunk(name: string, items: unknown[], star: boolean, p: ShmPack | null, resultName: string, id: number): Promise<[unknown, ShmPack | null]> {
    running++;
    try {
      const { ctx, signal } = contextOf(name, id);
      const fn = lookup(name);
      const list = open(items, p) as unknown[];
      const results = new Array<unknown>(list.length);
      for (let i = 0; i < list.length; i++) {
        results[i] = await runWithContext(ctx, fn, undefined, star ? (list[i] as unknown[]) : [list[i]]);
      }
      return reply(results, resultName, signal());
    } finally {
      finished();
    }
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
