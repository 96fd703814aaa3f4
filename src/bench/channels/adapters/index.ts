/** Every Node-side mechanism of the channel benchmark, in table order. */
import type { Adapter } from '../common.js';
import { baselines } from './baselines.js';
import { mqueues } from './mqueue.js';
import { fifo, fifoInto, pipe, pipeInto } from './pipes.js';
import { fileChannel, shmRing, shmRingInto, shmRingSpin, shmRingSync, shmRingView } from './ring.js';
import { socketPair } from './socketpair.js';
import { sockets, socketsInto } from './sockets.js';
import { memoryMapMutex, sharedMemoryMutex } from './memory.js';

export const adapters: Adapter[] = [...baselines, ...mqueues, pipe, pipeInto, fifo, fifoInto, socketPair, ...sockets, ...socketsInto, shmRing, shmRingSpin, shmRingSync, shmRingView, shmRingInto, fileChannel, sharedMemoryMutex, memoryMapMutex];

export function adapterById(id: string): Adapter {
  const a = adapters.find((x) => x.id === id);
  if (!a) throw new Error(`unknown mechanism ${id}`);
  return a;
}
