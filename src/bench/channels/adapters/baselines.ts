/**
 * What Node users have today: child_process fork IPC ('json' with a string
 * payload, its best case; 'advanced' with a Buffer) and a worker thread's
 * MessagePort (a Uint8Array, copied, not transferred).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { Worker, parentPort } from 'node:worker_threads';
import { BYTE_MESSAGES, childExit, Inbox, peerPath, type Adapter, type Endpoint, type TrialSpec } from '../common.js';

function processSender(send: (m: unknown, cb: (err: Error | null) => void) => boolean): (m: unknown) => void | Promise<void> {
  // child.send() queues without limit; when it says the backlog is over its
  // threshold (false), wait for that message to be written.
  return (m) => {
    let settle: ((err: Error | null) => void) | undefined;
    let failed: Error | null = null;
    let written = false;
    const ok = send(m, (err) => {
      written = true;
      failed = err;
      settle?.(err);
    });
    if (ok) return undefined;
    if (written) return failed ? Promise.reject(failed) : undefined;
    return new Promise<void>((resolve, reject) => {
      settle = (err) => (err ? reject(err) : resolve());
    });
  };
}

function forkAdapter(serialization: 'json' | 'advanced'): Adapter {
  return {
    id: `fork-${serialization}`,
    label: `child_process fork IPC, serialization '${serialization}' (${serialization === 'json' ? 'string' : 'Buffer'} payload)`,
    group: 'baseline',
    traits: {
      mechanism: `fork-${serialization}`,
      medium: 'socket',
      unit: 'message',
      direction: 'two-way',
      scope: 'parent-child',
      use: serialization === 'json' ? "Node's built-in channel to a forked child: nothing to install" : "Node's built-in channel, with structured clone for Buffers, Maps and Dates",
    },
    maxSize: () => Infinity,
    payload: (size) => (serialization === 'json' ? 'x'.repeat(size) : Buffer.alloc(size, 120)),
    ack: () => 'k',
    async driver(spec: TrialSpec) {
      const child: ChildProcess = fork(peerPath, ['partner', JSON.stringify(spec)], { serialization, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
      const exit = childExit(child);
      const inbox = new Inbox();
      child.on('message', (m) => inbox.push(m));
      const ep: Endpoint = {
        send: processSender((m, cb) => child.send(m as string, cb)),
        receive: () => inbox.receive(),
        close: async () => {
          if (child.connected) child.disconnect();
        },
      };
      return { ep, partnerExit: exit, kill: () => child.kill('SIGKILL') };
    },
    async partner() {
      const inbox = new Inbox();
      process.on('message', (m) => inbox.push(m));
      return {
        send: processSender((m, cb) => process.send!(m, undefined, undefined, cb)),
        receive: () => inbox.receive(),
        drain: (n) => inbox.drain(n),
        close: async () => {
          if (process.connected) process.disconnect();
        },
      };
    },
  };
}

const worker: Adapter = {
  id: 'worker',
  label: 'worker_threads MessagePort (Uint8Array, copied; a thread, not a process)',
  group: 'baseline',
  traits: { mechanism: 'worker', medium: 'memory', unit: 'message', direction: 'two-way', scope: 'same-process', use: 'threads of one process: no isolation from crashes, shared heap limits' },
  maxSize: () => Infinity,
  ...BYTE_MESSAGES,
  async driver(spec) {
    const w = new Worker(peerPath, { workerData: { role: 'partner', spec }, stdout: false, stderr: false });
    const exit = new Promise<void>((resolve, reject) => {
      w.once('error', reject);
      w.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker exited with code ${code}`))));
    });
    const inbox = new Inbox();
    w.on('message', (m) => inbox.push(m));
    return {
      ep: { send: (m) => w.postMessage(m), receive: () => inbox.receive(), close: async () => {} },
      partnerExit: exit,
      kill: () => void w.terminate(),
    };
  },
  async partner() {
    const port = parentPort!;
    const inbox = new Inbox();
    port.on('message', (m) => inbox.push(m));
    return {
      send: (m) => port.postMessage(m),
      receive: () => inbox.receive(),
      drain: (n) => inbox.drain(n),
      close: async () => {
        port.close();
      },
    };
  },
};

export const baselines: Adapter[] = [forkAdapter('json'), forkAdapter('advanced'), worker];
