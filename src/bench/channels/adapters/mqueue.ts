/**
 * MessageQueue, one queue per direction (a queue is shared by everyone who
 * opens it: with one queue the driver could receive its own message).
 */
import { MessageQueue, type MessageQueueBackend } from '../../../index.js';
import { BYTE_MESSAGES, fastSend, tryDrain, startPartner, type Adapter, type Endpoint, type TrialSpec } from '../common.js';

/** The names a trial's queues get, for cleanup by the runner. */
export function queueNames(spec: Pick<TrialSpec, 'name'>): string[] {
  return [`${spec.name}-ab`, `${spec.name}-ba`];
}

function limitFor(backend: MessageQueueBackend): number {
  const l = MessageQueue.limits();
  if (backend === 'posix') return Math.max(1, (l.posix.msgsizeMax ?? 8192) - 8);
  if (backend === 'sysv') return l.sysv.msgmax ?? 8192;
  return 64 * 1024 * 1024;
}

function mqAdapter(backend: MessageQueueBackend): Adapter {
  return {
    id: `mq-${backend}`,
    label: `MessageQueue backend '${backend}' (two queues)`,
    group: 'ours',
    maxSize: () => limitFor(backend),
    ...BYTE_MESSAGES,
    async driver(spec) {
      const [ab, ba] = queueNames(spec) as [string, string];
      const opts = (): Parameters<typeof MessageQueue.create<Uint8Array>>[1] => {
        if (backend === 'posix') {
          const msgMax = MessageQueue.limits().posix.msgMax ?? 10;
          return { backend, codec: 'raw', maxMessageSize: spec.size, capacity: Math.min(msgMax, 64) };
        }
        if (backend === 'sysv') return { backend, codec: 'raw', maxMessageSize: spec.size };
        return { backend, codec: 'raw', maxMessageSize: spec.size, capacity: 1024, capacityBytes: Math.max(1 << 20, 4 * spec.size) };
      };
      const out = MessageQueue.create<Uint8Array>(ab, opts());
      let back: MessageQueue<Uint8Array>;
      try {
        back = MessageQueue.create<Uint8Array>(ba, opts());
      } catch (err) {
        await out.close();
        throw err;
      }
      const { child, exit } = startPartner(spec);
      const ep: Endpoint = {
        send: fastSend(out),
        receive: () => back.receive(),
        drain: tryDrain(back),
        traits: out.traits,
        close: async () => {
          await out.close();
          await back.close();
        },
      };
      return { ep, partnerExit: exit, kill: () => child.kill('SIGKILL') };
    },
    async partner(spec) {
      const [ab, ba] = queueNames(spec) as [string, string];
      const inq = MessageQueue.open<Uint8Array>(ab, { backend, codec: 'raw' });
      const outq = MessageQueue.open<Uint8Array>(ba, { backend, codec: 'raw' });
      return {
        send: fastSend(outq),
        receive: () => inq.receive(),
        drain: tryDrain(inq),
        close: async () => {
          await outq.close();
          await inq.close();
        },
      };
    },
  };
}

export const mqueues: Adapter[] = [mqAdapter('posix'), mqAdapter('sysv'), mqAdapter('shm')];
