/**
 * This environment's doorbell (see src/native/bell.cc): a waiter parks by
 * publishing the doorbell's id and a fresh token where a waker will look,
 * and the waker's one datagram resolves it on this event loop, with no
 * thread in between.
 *
 * Tokens are unique per environment and used once, so a late or stray
 * datagram finds no waiter and is ignored. Should the socket's queue ever
 * overflow (a datagram refused), the drain that follows is at least a full
 * queue long: then every waiter is woken to look again, so none is lost.
 *
 * @internal
 */
import { readFileSync } from 'node:fs';
import { native } from '../binding/native.js';
import { AbortError } from '../errors.js';
import { setLongTimeout, type LongTimeout } from '../long-timeout.js';
import type { WaitSignal } from './wait.js';

const waiters = new Map<number, (woken: boolean) => void>();
/** -1: not opened yet; -2: unavailable here. */
let id = -1;
let nextToken = 0;
let overflowAt = 10;

function onTokens(tokens: number[] | null): void {
  // null: the socket failed. Waiters look again and, from now on, wait on futexes.
  if (tokens === null) id = -2;
  if (tokens === null || tokens.length >= overflowAt) {
    for (const w of [...waiters.values()]) w(true);
    return;
  }
  for (const t of tokens) waiters.get(t)?.(true);
}

/** The doorbell's id (20 bits), opened on first use; -1 when this system has none. @internal */
export function bellId(): number {
  if (id === -1) {
    try {
      id = native.bellOpen(onTokens);
      // The kernel refuses datagrams once this many wait unread (read at socket creation).
      const qlen = Number(readFileSync('/proc/sys/net/unix/max_dgram_qlen', 'latin1').trim());
      if (Number.isInteger(qlen) && qlen > 0) overflowAt = qlen;
    } catch {
      id = -2;
    }
  }
  return id < 0 ? -1 : id;
}

/** A token for one wait, never 0. @internal */
export function bellToken(): number {
  nextToken = (nextToken % 0x7fffffff) + 1;
  return nextToken;
}

/**
 * Waits until `token` is rung (true), `ms` pass (false; -1 waits forever) or
 * `signal` aborts (rejects with AbortError). @internal
 */
export function waitBell(token: number, ms: number, signal: WaitSignal | undefined): Promise<boolean> {
  return new Promise<boolean>((resolve, reject) => {
    let timer: LongTimeout | undefined;
    const done = (): void => {
      waiters.delete(token);
      if (waiters.size === 0) native.bellRef(false);
      timer?.clear();
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = (): void => {
      done();
      reject(new AbortError(undefined, { cause: signal?.reason }));
    };
    if (waiters.size === 0) native.bellRef(true);
    waiters.set(token, (woken) => {
      done();
      resolve(woken);
    });
    if (ms >= 0) timer = setLongTimeout(() => waiters.get(token)?.(false), ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Rings doorbell `bell` with `token`: 0, or the errno (ECONNREFUSED: nobody holds it, as seen from this network namespace). @internal */
export function ringBell(bell: number, token: number): number {
  return native.bellRing(bell, token);
}
