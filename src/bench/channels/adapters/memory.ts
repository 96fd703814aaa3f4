/**
 * Shared memory without a channel: what a user writes by hand with a
 * SharedMemory (or a MemoryMap of a file) and a Mutex. Each direction is a
 * one-message mailbox: a Mutex, two Conditions ("not empty", "not full"), a
 * "full" word, the length and the bytes. The sender waits while the mailbox is
 * full, the receiver while it is empty; both copy (a message must survive the
 * next one). One condition per predicate: a notify is then always meant for
 * the one thread that can wait on it.
 */
import path from 'node:path';
import { Condition, MemoryMap, Mutex, SharedMemory } from '../../../index.js';
import { BYTE_MESSAGES, startPartner, type Adapter, type BenchTraits, type Endpoint, type TrialSpec } from '../common.js';

// Per direction: Mutex at 0 (64 B), Conditions at 64 and 96 (32 B each), full and length words at 128, data at 160.
const HEADER = 160;
const FULL = 128 / 4;
const LENGTH = 132 / 4;
// Bounded waits: a dead peer fails the trial instead of hanging it.
const timeout = 20_000;

const regionSize = (size: number): number => HEADER + Math.ceil(Math.max(size, 16) / 8) * 8;

class Mailbox {
  readonly #mutex: Mutex;
  readonly #notEmpty: Condition;
  readonly #notFull: Condition;
  readonly #words: Int32Array;
  readonly #bytes: Uint8Array;

  constructor(memory: SharedMemory | SharedArrayBuffer, offset: number, size: number) {
    const buffer = memory instanceof SharedArrayBuffer ? memory : memory.buffer;
    this.#mutex = new Mutex(memory, offset);
    this.#notEmpty = new Condition(memory, offset + 64);
    this.#notFull = new Condition(memory, offset + 96);
    this.#words = new Int32Array(buffer, offset, HEADER / 4);
    this.#bytes = new Uint8Array(buffer, offset + HEADER, regionSize(size) - HEADER);
  }

  async put(m: Uint8Array): Promise<void> {
    using _guard = this.#mutex.tryAcquire() ?? (await this.#mutex.acquire({ timeout }));
    while (this.#words[FULL] === 1) await this.#notFull.wait(this.#mutex, { timeout });
    this.#bytes.set(m);
    this.#words[LENGTH] = m.length;
    this.#words[FULL] = 1;
    this.#notEmpty.notify();
  }

  async take(): Promise<Uint8Array> {
    using _guard = this.#mutex.tryAcquire() ?? (await this.#mutex.acquire({ timeout }));
    while (this.#words[FULL] === 0) await this.#notEmpty.wait(this.#mutex, { timeout });
    const m = this.#bytes.slice(0, this.#words[LENGTH]);
    this.#words[FULL] = 0;
    this.#notFull.notify();
    return m;
  }

  close(): void {
    this.#notEmpty.close();
    this.#notFull.close();
    this.#mutex.close();
  }
}

/** The driver's side sends through mailbox 0 and receives from mailbox 1; the partner the reverse. */
function endpoint(memory: SharedMemory | SharedArrayBuffer, size: number, driver: boolean, release: () => void): Endpoint {
  const a = new Mailbox(memory, 0, size);
  const b = new Mailbox(memory, regionSize(size), size);
  const [out, input] = driver ? [a, b] : [b, a];
  return {
    send: (m) => out.put(m as Uint8Array),
    receive: () => input.take(),
    close: async () => {
      a.close();
      b.close();
      release();
    },
  };
}

const sharedTraits: BenchTraits = {
  mechanism: 'shm+mutex',
  medium: 'memory',
  unit: 'page',
  direction: 'two-way',
  scope: 'same-host',
  use: 'state that processes share and update in place, guarded by a lock',
};

export const sharedMemoryMutex: Adapter = {
  id: 'shm-mutex',
  label: 'SharedMemory + Mutex + Condition (a one-message mailbox per direction)',
  group: 'ours',
  traits: sharedTraits,
  maxSize: () => Infinity,
  // A mailbox hand-off per message: about 10,000 a second.
  maxCount: 50_000,
  ...BYTE_MESSAGES,
  async driver(spec: TrialSpec) {
    const shm = SharedMemory.create(spec.name, 2 * regionSize(spec.size));
    const { child, exit } = startPartner(spec);
    return { ep: endpoint(shm, spec.size, true, () => shm.close()), partnerExit: exit, kill: () => child.kill('SIGKILL') };
  },
  async partner(spec) {
    const shm = SharedMemory.open(spec.name);
    return endpoint(shm, spec.size, false, () => shm.close());
  },
};

const mapPath = (spec: TrialSpec): string => path.join(spec.dir, 'mailbox.bin');

export const memoryMapMutex: Adapter = {
  id: 'mmap-mutex',
  label: 'MemoryMap of a file + Mutex + Condition (a one-message mailbox per direction)',
  group: 'ours',
  traits: {
    mechanism: 'mmap+mutex',
    medium: 'file+memory',
    unit: 'page',
    direction: 'two-way',
    scope: 'same-host',
    use: 'state in a file that every process maps: survives restarts, read without copying',
  },
  maxSize: () => Infinity,
  maxCount: 50_000,
  ...BYTE_MESSAGES,
  async driver(spec) {
    const map = MemoryMap.create(mapPath(spec), 2 * regionSize(spec.size));
    const { child, exit } = startPartner(spec);
    return { ep: endpoint(map.buffer, spec.size, true, () => map.close()), partnerExit: exit, kill: () => child.kill('SIGKILL') };
  },
  async partner(spec) {
    const map = MemoryMap.open(mapPath(spec), { access: 'readWrite' });
    return endpoint(map.buffer, spec.size, false, () => map.close());
  },
};
