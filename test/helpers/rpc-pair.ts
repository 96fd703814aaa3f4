/** An exposed object and a connected proxy over a StreamChannel pair on a Unix socket pair. */
import { connect, expose, rpcClient, type ConnectOptions, type ExposeOptions, type Remote, type RpcClient, type RpcServer } from '../../src/index.js';
import type { StreamChannel } from '../../src/channel/stream-channel.js';
import { channelPair, type StreamChannelOptions } from './socket-pair.js';

export interface RpcPair<T> {
  remote: Remote<T>;
  client: RpcClient;
  server: RpcServer;
  /** The exposing side's channel. */
  a: StreamChannel<any>;
  /** The calling side's channel. */
  b: StreamChannel<any>;
  /** Destroys both channels. */
  cleanup(): void;
}

export async function rpcPair<T extends object>(api: T, options: { channel?: StreamChannelOptions; expose?: ExposeOptions; connect?: ConnectOptions } = {}): Promise<RpcPair<T>> {
  const { a, b, cleanup } = await channelPair(options.channel);
  const server = expose(api, a, options.expose);
  const remote = connect<T>(b, options.connect);
  return { remote, client: rpcClient(remote), server, a, b, cleanup };
}

/** A promise with its resolve function outside, to let a test decide when a method returns. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Resolves when `signal` aborts (or rejects after `ms`). */
export function aborted(signal: AbortSignal, ms = 10000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return resolve(signal.reason);
    const t = setTimeout(() => reject(new Error(`signal did not abort within ${ms} ms`)), ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve(signal.reason);
    }, { once: true });
  });
}

/** Polls `condition` until it holds; fails after `ms`. */
export async function until(condition: () => boolean, ms = 10000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} did not hold within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
