/**
 * The kernel's message-queue limits, and errors that name the limit that was
 * hit and how to raise it (instead of a bare EINVAL).
 *
 * @internal
 */
import { readFileSync } from 'node:fs';
import { systemError, type SystemError } from '../errors.js';

/** The kernel's limits on message queues, as read from /proc (null where unreadable). */
export interface MessageQueueLimits {
  posix: {
    /** fs.mqueue.msg_max: most messages per queue for unprivileged processes. */
    msgMax: number | null;
    /** fs.mqueue.msgsize_max: largest message (bytes, our 8-byte header included). */
    msgsizeMax: number | null;
    /** fs.mqueue.msg_default / msgsize_default: what a queue gets when nothing is asked. */
    msgDefault: number | null;
    msgsizeDefault: number | null;
    /** fs.mqueue.queues_max: queues on the system. */
    queuesMax: number | null;
    /** RLIMIT_MSGQUEUE (`ulimit -q`): bytes of queues per user, or null when unlimited. */
    bytesPerUser: number | null;
    /** MQ_PRIO_MAX: priorities are 0 .. priorities - 1. */
    priorities: number;
  };
  sysv: {
    /** kernel.msgmax: largest message in bytes. */
    msgmax: number | null;
    /** kernel.msgmnb: default (and, unprivileged, highest) bytes per queue. */
    msgmnb: number | null;
    /** kernel.msgmni: queues on the system. */
    msgmni: number | null;
  };
}

function readInt(path: string): number | null {
  try {
    const n = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

function rlimitMsgqueue(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max msgqueue size'));
    const soft = line?.slice('Max msgqueue size'.length).trim().split(/\s+/)[0];
    if (soft === undefined || soft === 'unlimited') return null;
    const n = Number.parseInt(soft, 10);
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

/** @internal */
export function readLimits(priorities: number): MessageQueueLimits {
  const mq = '/proc/sys/fs/mqueue/';
  const k = '/proc/sys/kernel/';
  return {
    posix: {
      msgMax: readInt(mq + 'msg_max'),
      msgsizeMax: readInt(mq + 'msgsize_max'),
      msgDefault: readInt(mq + 'msg_default'),
      msgsizeDefault: readInt(mq + 'msgsize_default'),
      queuesMax: readInt(mq + 'queues_max'),
      bytesPerUser: rlimitMsgqueue(),
      priorities,
    },
    sysv: { msgmax: readInt(k + 'msgmax'), msgmnb: readInt(k + 'msgmnb'), msgmni: readInt(k + 'msgmni') },
  };
}

function withLimit(err: unknown, limit: string, explanation: string): unknown {
  const e = err as SystemError & { limit?: string };
  e.limit = limit;
  e.message = `${e.code}: ${explanation}`;
  return e;
}

/**
 * Rewrites an mq_open failure. `maxmsg`/`msgsize` are what was asked (0: defaults).
 * @internal
 */
export function mqOpenError(err: unknown, name: string, maxmsg: number, msgsize: number, creating: boolean): unknown {
  const code = (err as { code?: string }).code;
  const where = `POSIX message queue '/${name}'`;
  if (creating && code === 'EINVAL') {
    const l = readLimits(0).posix;
    if (l.msgMax !== null && maxmsg > l.msgMax) {
      return withLimit(
        err,
        'fs.mqueue.msg_max',
        `${where}: a capacity of ${maxmsg} messages exceeds the kernel limit fs.mqueue.msg_max = ${l.msgMax} ` +
          `(/proc/sys/fs/mqueue/msg_max); raise it as root with \`sysctl -w fs.mqueue.msg_max=${maxmsg}\`, ` +
          `run with CAP_SYS_RESOURCE, or ask for fewer (mq_open)`,
      );
    }
    if (l.msgsizeMax !== null && msgsize > l.msgsizeMax) {
      return withLimit(
        err,
        'fs.mqueue.msgsize_max',
        `${where}: messages of ${msgsize} bytes (maxMessageSize + an 8-byte header) exceed the kernel limit ` +
          `fs.mqueue.msgsize_max = ${l.msgsizeMax} (/proc/sys/fs/mqueue/msgsize_max); raise it as root with ` +
          `\`sysctl -w fs.mqueue.msgsize_max=${msgsize}\`, run with CAP_SYS_RESOURCE, or lower maxMessageSize (mq_open)`,
      );
    }
  }
  if (creating && code === 'EMFILE') {
    const l = readLimits(0).posix;
    const asked = maxmsg > 0 ? ` (this queue needs about ${maxmsg * msgsize} bytes plus kernel bookkeeping)` : '';
    return withLimit(
      err,
      'RLIMIT_MSGQUEUE',
      `${where}: the per-user limit on message-queue memory RLIMIT_MSGQUEUE` +
        `${l.bytesPerUser !== null ? ` (${l.bytesPerUser} bytes)` : ''} is used up${asked}, or this process has too many open files; ` +
        'close other queues, ask for a smaller capacity or maxMessageSize, or raise the limit (`ulimit -q`, setrlimit, ' +
        '"msgqueue" in /etc/security/limits.conf) (mq_open)',
    );
  }
  if (creating && code === 'ENOSPC') {
    const l = readLimits(0).posix;
    return withLimit(
      err,
      'fs.mqueue.queues_max',
      `${where}: the system-wide limit fs.mqueue.queues_max${l.queuesMax !== null ? ` = ${l.queuesMax}` : ''} queues is reached ` +
        '(/proc/sys/fs/mqueue/queues_max); remove unused queues (ls /dev/mqueue) or raise it as root with ' +
        '`sysctl -w fs.mqueue.queues_max=N` (mq_open)',
    );
  }
  return systemError(err, 'POSIX message queue', `/${name}`);
}

/** Rewrites a msgget / msgctl(IPC_SET) failure. @internal */
export function sysvError(err: unknown, name: string, key: number, qbytes?: number): unknown {
  const code = (err as { code?: string }).code;
  const syscall = (err as { syscall?: string }).syscall;
  const where = `System V message queue '${name}' (key 0x${(key >>> 0).toString(16).padStart(8, '0')})`;
  if (code === 'ENOSPC' && syscall === 'msgget') {
    const n = readLimits(0).sysv.msgmni;
    return withLimit(
      err,
      'kernel.msgmni',
      `${where}: the system-wide limit kernel.msgmni${n !== null ? ` = ${n}` : ''} queues is reached (/proc/sys/kernel/msgmni); ` +
        'remove unused queues (ipcs -q, ipcrm) or raise it as root with `sysctl -w kernel.msgmni=N` (msgget)',
    );
  }
  if (code === 'EEXIST' && syscall === 'msgget') {
    return withLimit(
      err,
      'key',
      `${where}: a queue with this key exists already (left by a process that died, or another name with the same key); ` +
        "remove it with creation 'purgeAndCreate' or `ipcrm -Q 0x" +
        `${(key >>> 0).toString(16)}\`, or pick another name (msgget)`,
    );
  }
  if (code === 'EPERM' && qbytes !== undefined) {
    const n = readLimits(0).sysv.msgmnb;
    return withLimit(
      err,
      'kernel.msgmnb',
      `${where}: a capacity of ${qbytes} bytes exceeds the kernel limit kernel.msgmnb${n !== null ? ` = ${n}` : ''} ` +
        `(/proc/sys/kernel/msgmnb), which only CAP_SYS_RESOURCE may pass; raise it as root with ` +
        `\`sysctl -w kernel.msgmnb=${qbytes}\` or ask for less (msgctl IPC_SET)`,
    );
  }
  return systemError(err, 'System V message queue', name);
}
