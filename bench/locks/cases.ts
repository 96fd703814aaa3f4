/**
 * The rows of the lock benchmark: what each one runs and what it measures.
 * The runner, the report and docs/benchmarks.md all follow this list.
 */

export type Group = 'uncontended' | 'handoff';
/** `ours`: the library's public API. `c`: the C reference. `diagnostic`: pieces of our cost, to see where time goes. */
export type Impl = 'ours' | 'c' | 'diagnostic';

export interface LockCase {
  /** Stable key in the JSON output and for --filter. */
  id: string;
  group: Group;
  impl: Impl;
  label: string;
  description: string;
  /** A case of bench/locks/trial.ts, or a C program of bench/c with its lock kind. */
  run: { js: string } | { c: 'lock_uncontended' | 'lock_handoff'; kind: string };
}

export const cases: readonly LockCase[] = [
  {
    id: 'uncontended/try+guard',
    group: 'uncontended',
    impl: 'ours',
    label: 'tryAcquire() + guard.release()',
    description: 'Take a free Mutex with tryAcquire() and release it through the returned guard.',
    run: { js: 'try-guard' },
  },
  {
    id: 'uncontended/try+release',
    group: 'uncontended',
    impl: 'ours',
    label: 'tryAcquire() + mutex.release()',
    description: 'As above, releasing with mutex.release() directly (the guard is created but not used).',
    run: { js: 'try-direct' },
  },
  {
    id: 'uncontended/sync+guard',
    group: 'uncontended',
    impl: 'ours',
    label: 'acquireSync() + guard.release()',
    description: 'The blocking acquire on a free Mutex (no wait happens), released through the guard.',
    run: { js: 'sync-guard' },
  },
  {
    id: 'uncontended/sync+release',
    group: 'uncontended',
    impl: 'ours',
    label: 'acquireSync() + mutex.release()',
    description: 'As above, releasing with mutex.release() directly.',
    run: { js: 'sync-direct' },
  },
  {
    id: 'uncontended/async+guard',
    group: 'uncontended',
    impl: 'ours',
    label: 'await acquire() + guard.release()',
    description: 'The event-loop acquire on a free Mutex: its fast path, plus one promise and one await.',
    run: { js: 'async-guard' },
  },
  {
    id: 'uncontended/native-pair',
    group: 'uncontended',
    impl: 'diagnostic',
    label: 'addon mutexTryLock + mutexUnlock',
    description: 'The two addon calls behind a lock+unlock, called directly: our cost without the TypeScript layer.',
    run: { js: 'native-pair' },
  },
  {
    id: 'uncontended/addon-floor',
    group: 'uncontended',
    impl: 'diagnostic',
    label: '2 near-empty addon calls',
    description: 'Two calls of an addon function that does almost nothing with a SharedArrayBuffer argument (mutexHeldIn): the floor of any lock that makes two addon calls.',
    run: { js: 'addon-floor' },
  },
  {
    id: 'uncontended/js-atomics',
    group: 'uncontended',
    impl: 'diagnostic',
    label: 'Atomics.compareExchange + Atomics.store',
    description: 'A lock word taken and cleared from JavaScript alone: the floor without any addon call (no robustness, no waiting, no owner check).',
    run: { js: 'js-atomics' },
  },
  {
    id: 'uncontended/c-pthread',
    group: 'uncontended',
    impl: 'c',
    label: 'C pthread_mutex (process-shared)',
    description: 'pthread_mutex_lock + pthread_mutex_unlock on a PTHREAD_PROCESS_SHARED mutex in shared memory.',
    run: { c: 'lock_uncontended', kind: 'pthread' },
  },
  {
    id: 'uncontended/c-pthread-robust',
    group: 'uncontended',
    impl: 'c',
    label: 'C pthread_mutex (process-shared, robust)',
    description: 'As above with PTHREAD_MUTEX_ROBUST, which, like our Mutex, links itself into the robust-futex list.',
    run: { c: 'lock_uncontended', kind: 'pthread-robust' },
  },
  {
    id: 'uncontended/c-futex',
    group: 'uncontended',
    impl: 'c',
    label: 'C futex CAS lock',
    description: 'A bare futex lock (compare-and-swap to lock, atomic decrement to unlock; Drepper\'s "mutex 3").',
    run: { c: 'lock_uncontended', kind: 'futex' },
  },
  {
    id: 'handoff/sync',
    group: 'handoff',
    impl: 'ours',
    label: 'Mutex, acquireSync() both sides',
    description: 'Two Node processes pass three Mutexes around (see "Handoff design"), waiting with the blocking acquireSync() (spins, then futex).',
    run: { js: 'handoff-sync' },
  },
  {
    id: 'handoff/async',
    group: 'handoff',
    impl: 'ours',
    label: 'Mutex, await acquire() both sides',
    description: 'The same rotation, waiting with await acquire(): the wait goes through the futex service thread and the event loop.',
    run: { js: 'handoff-async' },
  },
  {
    id: 'handoff/sync-nospin',
    group: 'handoff',
    impl: 'diagnostic',
    label: 'addon mutexLock, no spin phase',
    description: 'The sync rotation calling the addon\'s blocking lock directly with 0 spins: what acquireSync() would cost if it slept at once, like the C futex lock.',
    run: { js: 'handoff-sync-nospin' },
  },
  {
    id: 'handoff/async-wait',
    group: 'handoff',
    impl: 'diagnostic',
    label: 'async wait on a turn word, no mutex',
    description: 'Two Node processes pass a turn word back and forth (store, futex wake, event-loop wait through the futex service): the floor of any async handoff in this library.',
    run: { js: 'handoff-async-wait' },
  },
  {
    id: 'handoff/c-pthread',
    group: 'handoff',
    impl: 'c',
    label: 'C pthread_mutex (process-shared)',
    description: 'The same rotation in C (two forked processes) with process-shared pthread mutexes.',
    run: { c: 'lock_handoff', kind: 'pthread' },
  },
  {
    id: 'handoff/c-pthread-robust',
    group: 'handoff',
    impl: 'c',
    label: 'C pthread_mutex (process-shared, robust)',
    description: 'As above with robust pthread mutexes.',
    run: { c: 'lock_handoff', kind: 'pthread-robust' },
  },
  {
    id: 'handoff/c-futex',
    group: 'handoff',
    impl: 'c',
    label: 'C futex CAS lock',
    description: 'The same rotation with the bare futex lock: the waiter sleeps in FUTEX_WAIT at once. The reference for the targets.',
    run: { c: 'lock_handoff', kind: 'futex' },
  },
  {
    id: 'handoff/c-futex-spin',
    group: 'handoff',
    impl: 'c',
    label: 'C futex CAS lock, 200 spins first',
    description: 'The bare futex lock spinning up to 200 times before sleeping, as acquireSync() does: the hardware limit of that strategy.',
    run: { c: 'lock_handoff', kind: 'futex-spin' },
  },
];

/** Reference rows the ratios divide by. */
export const references = {
  uncontended: { futex: 'uncontended/c-futex', pthread: 'uncontended/c-pthread', pthreadRobust: 'uncontended/c-pthread-robust' },
  handoff: { futex: 'handoff/c-futex', futexSpin: 'handoff/c-futex-spin', pthread: 'handoff/c-pthread' },
} as const;

/** The targets the foundation is held to. */
export const targets = {
  /** Uncontended lock+unlock, ns, for each of these rows. */
  uncontendedNs: 100,
  uncontendedRows: ['uncontended/try+guard', 'uncontended/try+release', 'uncontended/sync+guard', 'uncontended/sync+release'],
  /** p50 handoff of handoff/sync over handoff/c-futex. */
  syncHandoffRatio: 2,
  /** p50 handoff of handoff/async over handoff/c-futex. */
  asyncHandoffRatio: 4,
} as const;
