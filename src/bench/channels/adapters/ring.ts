/**
 * ShmRing.createDuplex (two SPSC rings of 4 MiB like the C ring, room for 4
 * messages when that is more) and FileChannel (two files, one per direction: a
 * FileChannel is one-way).
 */
import path from 'node:path';
import { FileChannel, ShmRing } from '../../../index.js';
import { BYTE_MESSAGES, fastSend, receivingInto, tryDrain, startPartner, type Adapter, type BenchTraits, type Endpoint, type IntoReceiver } from '../common.js';

const RING_CAPACITY = 4 << 20;
const RING_MAX_CAPACITY = 1 << 30;

/**
 * 4 MiB like the C ring, or room for 4 messages when they are larger. The
 * C ring is a byte stream that takes a 1 MiB message in pieces while its
 * reader drains the other end; a ShmRing holds whole records. A larger ring
 * only spreads the copies over memory that no longer fits the caches: with
 * room for 16 one-MiB messages the rate halved.
 */
function ringCapacity(size: number): number {
  let c = RING_CAPACITY;
  while (c < 4 * (size + 32) && c < RING_MAX_CAPACITY) c *= 2;
  return c;
}

type RingDuplex = ReturnType<typeof ShmRing.createDuplex<Uint8Array>>;

/** A row over a ShmRing duplex of raw bytes; `endpoint` says which calls it uses, `spinUs` how both ends wait (options.spinUs). */
function ringAdapter(row: Pick<Adapter, 'id' | 'label' | 'diagnostic'>, endpoint: (duplex: RingDuplex) => Endpoint, spinUs = 0): Adapter {
  return {
    ...row,
    group: 'ours',
    family: 'ring',
    maxSize: () => RING_MAX_CAPACITY - 16,
    ...BYTE_MESSAGES,
    async driver(spec) {
      const duplex = ShmRing.createDuplex<Uint8Array>(spec.name, { capacity: ringCapacity(spec.size), codec: 'raw', spinUs });
      const { child, exit } = startPartner(spec);
      return { ep: endpoint(duplex), partnerExit: exit, kill: () => child.kill('SIGKILL') };
    },
    async partner(spec) {
      return endpoint(ShmRing.openDuplex<Uint8Array>(spec.name, { codec: 'raw', spinUs }));
    },
  };
}

function ringEndpoint(ch: ShmRingDuplexLike): Endpoint {
  return {
    send: fastSend(ch),
    receive: () => {
      const m = ch.tryReceive();
      return m !== undefined ? Promise.resolve(m) : ch.receive();
    },
    drain: tryDrain(ch),
    close: () => ch.close(),
    traits: ch.traits,
  };
}

interface ShmRingDuplexLike {
  readonly traits: BenchTraits;
  trySend(m: Uint8Array): boolean;
  send(m: Uint8Array): Promise<void>;
  tryReceive(): Uint8Array | undefined;
  receive(): Promise<Uint8Array>;
  close(): Promise<void>;
}

export const shmRing = ringAdapter(
  { id: 'shmring', label: 'ShmRing.createDuplex (two SPSC rings of 4 MiB, or of room for 4 messages when more)' },
  (duplex) => ringEndpoint(duplex as unknown as ShmRingDuplexLike),
);

/** The spin budget of the shmring-spin row, µs: several busy round trips. */
export const RING_SPIN_US = 50;

export const shmRingSpin = ringAdapter(
  { id: 'shmring-spin', label: `ShmRing.createDuplex as shmring, both ends with spinUs: ${RING_SPIN_US} (async waits spin first)` },
  (duplex) => ringEndpoint(duplex as unknown as ShmRingDuplexLike),
  RING_SPIN_US,
);

interface SyncRing {
  trySend(m: Uint8Array): boolean;
  sendSync(m: Uint8Array, o?: { timeout?: number }): void;
  tryReceive(): Uint8Array | undefined;
  receiveSync(o?: { timeout?: number }): Uint8Array;
}

/** The blocking forms (as in a worker thread that owns its loop): no event-loop wake-up on the path. */
function syncEndpoint(duplex: { sender: unknown; receiver: unknown; close(): Promise<void> }): Endpoint {
  const tx = duplex.sender as SyncRing;
  const rx = duplex.receiver as SyncRing;
  // Bounded, so a dead peer fails the trial instead of blocking it forever.
  const timeout = 20_000;
  return {
    send: (m) => {
      if (!tx.trySend(m as Uint8Array)) tx.sendSync(m as Uint8Array, { timeout });
    },
    receive: () => Promise.resolve(rx.tryReceive() ?? rx.receiveSync({ timeout })),
    async drain(n) {
      for (let i = 0; i < n; i++) if (rx.tryReceive() === undefined) rx.receiveSync({ timeout });
    },
    close: () => duplex.close(),
    traits: (duplex as { traits?: BenchTraits }).traits,
  };
}

export const shmRingSync = ringAdapter(
  { id: 'shmring-sync', label: 'diagnostic: ShmRing with receiveSync/sendSync on both sides (blocks the thread)', diagnostic: true },
  syncEndpoint,
);

interface ViewRing {
  tryReserve(n: number): Uint8Array | undefined;
  reserve(n: number): Promise<Uint8Array>;
  commit(): void;
  tryReceiveView(): { data: Uint8Array } | undefined;
  receiveView(): Promise<{ data: Uint8Array }>;
  release(): void;
}

/**
 * The zero-copy calls, used as the C program uses its ring: the sender
 * writes the message straight into the ring (tryReserve, set, commit), the
 * receiver copies it straight out of the ring into one buffer it reuses
 * (receiveView, set, release). One copy on each side, no allocation.
 */
function viewEndpoint(duplex: { sender: unknown; receiver: unknown; traits?: BenchTraits; close(): Promise<void> }): Endpoint {
  const tx = duplex.sender as ViewRing;
  const rx = duplex.receiver as ViewRing;
  let into = new Uint8Array(0);
  const take = (m: { data: Uint8Array }): Uint8Array => {
    const n = m.data.length;
    if (into.length < n) into = new Uint8Array(n);
    into.set(m.data);
    rx.release();
    return into.subarray(0, n);
  };
  const put = (view: Uint8Array, m: Uint8Array): void => {
    view.set(m);
    tx.commit();
  };
  return {
    send: (m) => {
      const msg = m as Uint8Array;
      const view = tx.tryReserve(msg.length);
      if (view !== undefined) return put(view, msg);
      return tx.reserve(msg.length).then((v) => put(v, msg));
    },
    receive: () => {
      const m = rx.tryReceiveView();
      return m !== undefined ? Promise.resolve(take(m)) : rx.receiveView().then(take);
    },
    async drain(n) {
      for (let i = 0; i < n; i++) {
        const m = rx.tryReceiveView();
        take(m ?? (await rx.receiveView()));
      }
    },
    traits: duplex.traits,
    close: () => duplex.close(),
  };
}

export const shmRingView = ringAdapter(
  { id: 'shmring-view', label: 'ShmRing zero-copy: tryReserve/commit and receiveView/release, the receiver copying into one reused buffer' },
  viewEndpoint,
);

/**
 * The C reader's way: send() on one side, receiveInto() one reused buffer
 * on the other. One memcpy on each side, no allocation per message.
 */
function intoEndpoint(duplex: RingDuplex): Endpoint {
  return receivingInto({ ...ringEndpoint(duplex as unknown as ShmRingDuplexLike), into: duplex.receiver as unknown as IntoReceiver });
}

export const shmRingInto = ringAdapter(
  { id: 'shmring-into', label: 'ShmRing send() and receiveInto() one reused buffer (as the C reader)' },
  intoEndpoint,
);

const files = (dir: string): [string, string] => [path.join(dir, 'ab.mpc'), path.join(dir, 'ba.mpc')];

function fileEndpoint(out: FileChannel<Uint8Array>, input: FileChannel<Uint8Array>): Endpoint {
  return {
    send: fastSend(out),
    receive: () => input.receive(),
    drain: tryDrain(input),
    traits: out.traits,
    close: async () => {
      await out.close();
      await input.close();
    },
  };
}

export const fileChannel: Adapter = {
  id: 'file',
  label: 'FileChannel (two files, one per direction)',
  group: 'ours',
  maxSize: () => Infinity,
  ...BYTE_MESSAGES,
  async driver(spec) {
    const [ab, ba] = files(spec.dir);
    const opts = { codec: 'raw' as const, maxMessageSize: Math.max(spec.size, 16) };
    const out = FileChannel.openWriter<Uint8Array>(ab, opts);
    const input = FileChannel.openReader<Uint8Array>(ba, { ...opts, offsetStore: false });
    const { child, exit } = startPartner(spec);
    return { ep: fileEndpoint(out, input), partnerExit: exit, kill: () => child.kill('SIGKILL') };
  },
  async partner(spec) {
    const [ab, ba] = files(spec.dir);
    const opts = { codec: 'raw' as const, maxMessageSize: Math.max(spec.size, 16) };
    const input = FileChannel.openReader<Uint8Array>(ab, { ...opts, offsetStore: false });
    const out = FileChannel.openWriter<Uint8Array>(ba, opts);
    return fileEndpoint(out, input);
  },
};
