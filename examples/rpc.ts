// RPC: a child process serves an object's methods over a channel; the parent
// calls them through a typed proxy. Errors come back with their class and code.
import { fileURLToPath } from 'node:url';
import { connect, expose, parentChannel, ready, spawn } from 'multiproc';

class Calculator {
  add(a: number, b: number): number {
    return a + b;
  }
  async divide(a: number, b: number): Promise<number> {
    if (b === 0) throw new RangeError('division by zero');
    return a / b;
  }
}

if (process.argv[2] === 'server') {
  expose(new Calculator(), await parentChannel('rpc'));
  ready();
} else {
  await using child = spawn(fileURLToPath(import.meta.url), { args: ['server'], channels: { rpc: 'stream' } });
  await child.ready;
  const calc = connect<Calculator>(child.channel('rpc'), { timeout: 5000 });
  console.log(`add(2, 3) = ${await calc.add(2, 3)}`);
  const failed = await calc.divide(1, 0).catch((err: unknown) => err);
  console.log(`divide(1, 0) threw ${(failed as Error).name}: ${(failed as Error).message}`); // a RangeError, as in the child
}
