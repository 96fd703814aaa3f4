/**
 * Pipe.duplex() (two anonymous pipes handed to the child as fds 3 and 4) and
 * NamedPipe (two FIFOs in the trial's directory, one per direction).
 */
import path from 'node:path';
import { NamedPipe, Pipe } from '../../../index.js';
import { BYTE_MESSAGES, fastSend, intoVariant, tryDrain, startPartner, type Adapter, type Endpoint } from '../common.js';

const options = (size: number) => ({ codec: 'raw' as const, maxMessageSize: Math.max(size, 16) });

export const pipe: Adapter = {
  id: 'pipe',
  label: 'Pipe.duplex() (two pipes, fds 3 and 4 of the child)',
  group: 'ours',
  family: 'pipe',
  maxSize: () => Infinity,
  ...BYTE_MESSAGES,
  async driver(spec) {
    const pipes = Pipe.duplex();
    const { child, exit } = startPartner(spec, [...pipes.childEnd('b')] as never[]);
    const ch = pipes.open('a', options(spec.size));
    const ep: Endpoint = { send: fastSend(ch), receive: () => ch.receive(), drain: tryDrain(ch), close: () => ch.close(), traits: ch.traits, into: ch };
    return { ep, partnerExit: exit, kill: () => child.kill('SIGKILL') };
  },
  async partner(spec) {
    const ch = Pipe.fromFds(3, 4, options(spec.size));
    return { send: fastSend(ch), receive: () => ch.receive(), drain: tryDrain(ch), close: () => ch.close(), into: ch };
  },
};

const fifoPaths = (dir: string): [string, string] => [path.join(dir, 'ab.fifo'), path.join(dir, 'ba.fifo')];

export const fifo: Adapter = {
  id: 'fifo',
  label: 'NamedPipe (two FIFOs)',
  group: 'ours',
  family: 'pipe',
  maxSize: () => Infinity,
  ...BYTE_MESSAGES,
  async driver(spec) {
    const [abPath, baPath] = fifoPaths(spec.dir);
    const ab = NamedPipe.create(abPath);
    const ba = NamedPipe.create(baPath);
    const { child, exit } = startPartner(spec);
    try {
      const input = ba.reader(options(spec.size));
      const out = await ab.writer({ ...options(spec.size), timeout: 20_000 });
      const ep: Endpoint = {
        send: fastSend(out),
        receive: () => input.receive(),
        drain: tryDrain(input),
        traits: out.traits,
        into: input,
        close: async () => {
          await out.close();
          await input.close();
          await ab.close();
          await ba.close();
        },
      };
      return { ep, partnerExit: exit, kill: () => child.kill('SIGKILL') };
    } catch (err) {
      child.kill('SIGKILL');
      await ab.close();
      await ba.close();
      throw err;
    }
  },
  async partner(spec) {
    const [abPath, baPath] = fifoPaths(spec.dir);
    const input = NamedPipe.open(abPath).reader(options(spec.size));
    const out = await NamedPipe.open(baPath).writer({ ...options(spec.size), timeout: 20_000 });
    return {
      send: fastSend(out),
      receive: () => input.receive(),
      drain: tryDrain(input),
      into: input,
      close: async () => {
        await out.close();
        await input.close();
      },
    };
  },
};

/** Pipe and FIFO with receiveInto one reused buffer on both ends (as the C reader), for large messages. */
export const pipeInto = intoVariant(pipe, 'Pipe.duplex(), receiveInto() one reused buffer (as the C reader)', 64 * 1024);
export const fifoInto = intoVariant(fifo, 'NamedPipe (two FIFOs), receiveInto() one reused buffer (as the C reader)', 64 * 1024);
