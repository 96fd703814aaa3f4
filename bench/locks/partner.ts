/**
 * The other side (B) of a handoff trial; see rotation.ts.
 * Usage: node partner.js <mode> <shmName> <steps>
 */
import { SharedMemory } from '../../src/index.js';
import { handoffModes, Rotation, type HandoffMode } from './rotation.js';

async function main(): Promise<void> {
  const [mode, shmName, stepsArg] = process.argv.slice(2);
  const steps = Number(stepsArg);
  if (!handoffModes.includes(mode as HandoffMode) || shmName === undefined || !(steps > 0)) {
    throw new Error(`usage: partner.js <${handoffModes.join('|')}> <shmName> <steps>`);
  }
  const shm = SharedMemory.open(shmName);
  const rotation = new Rotation(shm, mode as HandoffMode);
  try {
    rotation.start('B');
    rotation.signalReady();
    await rotation.runB(steps);
  } finally {
    rotation.releaseAll();
    shm.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
