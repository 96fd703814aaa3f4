// Programs that know nothing of multiproc share the kernel queues: small C
// programs, compiled here, send and receive with mq_send/mq_receive and
// msgsnd/msgrcv, following the documented message formats.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { MessageQueue } from '../../src/index.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { uniqueName } from '../helpers/names.js';
import { cCompiler, compileC, devMqueueSkip } from '../helpers/mqueue.js';
import { tempDir } from '../helpers/temp-files.js';

leakGuard();
devMqueueSkip();

const run = promisify(execFile);
const T = { timeout: 10000 };
const noCc = cCompiler() === null ? 'no C compiler (cc) is installed' : false;
const dir = tempDir('mqc');

// mqc send NAME TYPE PRIO TEXT | mqc raw NAME TEXT | mqc recv NAME
const mqc = `
#include <fcntl.h>
#include <mqueue.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc >= 6 && strcmp(argv[1], "send") == 0) {
    mqd_t q = mq_open(argv[2], O_WRONLY);
    if (q == (mqd_t)-1) { perror("mq_open"); return 1; }
    char buf[8192];
    uint32_t magic = 0x3151504d; /* 'M' 'P' 'Q' '1', little endian */
    int32_t type = atoi(argv[3]);
    size_t n = strlen(argv[5]);
    memcpy(buf, &magic, 4);
    memcpy(buf + 4, &type, 4);
    memcpy(buf + 8, argv[5], n);
    if (mq_send(q, buf, 8 + n, (unsigned)atoi(argv[4])) != 0) { perror("mq_send"); return 1; }
    return 0;
  }
  if (argc >= 4 && strcmp(argv[1], "raw") == 0) {
    mqd_t q = mq_open(argv[2], O_WRONLY);
    if (q == (mqd_t)-1 || mq_send(q, argv[3], strlen(argv[3]), 0) != 0) { perror("raw"); return 1; }
    return 0;
  }
  if (argc >= 3 && strcmp(argv[1], "recv") == 0) {
    mqd_t q = mq_open(argv[2], O_RDONLY);
    if (q == (mqd_t)-1) { perror("mq_open"); return 1; }
    struct mq_attr a;
    mq_getattr(q, &a);
    char *buf = malloc(a.mq_msgsize);
    unsigned prio;
    ssize_t n = mq_receive(q, buf, a.mq_msgsize, &prio);
    uint32_t magic;
    int32_t type;
    memcpy(&magic, buf, 4);
    memcpy(&type, buf + 4, 4);
    if (n < 8 || magic != 0x3151504d) { printf("no header\\n"); return 2; }
    printf("%d %u %.*s\\n", type, prio, (int)(n - 8), buf + 8);
    return 0;
  }
  return 64;
}
`;

// msgc send KEY TYPE PRIO TEXT | msgc raw KEY MTYPE TEXT | msgc recv KEY
const msgc = `
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>

struct message { long mtype; char text[8192]; };

int main(int argc, char **argv) {
  struct message m;
  if (argc < 3) return 64;
  int id = msgget((key_t)atol(argv[2]), 0);
  if (id < 0) { perror("msgget"); return 1; }
  if (argc >= 6 && strcmp(argv[1], "send") == 0) {
    m.mtype = atol(argv[3]) * 32768L + (32767 - atol(argv[4]));
    size_t n = strlen(argv[5]);
    memcpy(m.text, argv[5], n);
    if (msgsnd(id, &m, n, 0) != 0) { perror("msgsnd"); return 1; }
    return 0;
  }
  if (argc >= 5 && strcmp(argv[1], "raw") == 0) {
    m.mtype = atol(argv[3]);
    size_t n = strlen(argv[4]);
    memcpy(m.text, argv[4], n);
    if (msgsnd(id, &m, n, 0) != 0) { perror("msgsnd"); return 1; }
    return 0;
  }
  if (strcmp(argv[1], "recv") == 0) {
    ssize_t n = msgrcv(id, &m, sizeof m.text, 0, 0);
    if (n < 0) { perror("msgrcv"); return 1; }
    printf("%ld %ld %.*s\\n", m.mtype / 32768, 32767 - m.mtype % 32768, (int)n, m.text);
    return 0;
  }
  return 64;
}
`;

const text = (m: Uint8Array): string => Buffer.from(m).toString('utf8');

test('posix: a C program using mq_open sends to and receives from a queue of ours', { skip: noCc }, async () => {
  const exe = compileC(dir, 'mqc', mqc, ['-lrt']);
  const name = uniqueName('cpx');
  const q = MessageQueue.create<Uint8Array>(name, { backend: 'posix', codec: 'raw' });
  try {
    // A receive already waiting is woken by the foreign send (the event loop polls the descriptor).
    const waiting = q.receiveMessage(T);
    await run(exe, ['send', `/${name}`, '5', '7', 'hello from C']);
    const m = await waiting;
    assert.deepEqual([text(m.data), m.type, m.priority], ['hello from C', 5, 7]);

    await q.send(Buffer.from('hello from node'), { type: 3, priority: 2, ...T });
    const { stdout } = await run(exe, ['recv', `/${name}`]);
    assert.equal(stdout, '3 2 hello from node\n');

    // A message without the header is reported, dropped, and the queue goes on.
    await run(exe, ['raw', `/${name}`, 'no header here']);
    await assert.rejects(q.receive(T), (e: any) => e.code === 'ERR_MULTIPROC_PROTOCOL' && /without the multiproc header/.test(e.message));
    await q.send(Buffer.from('after'), T);
    assert.equal(text(await q.receive(T)), 'after');
  } finally {
    await q.close();
  }
});

test('sysv: a C program using msgget(key) sends to and receives from a queue of ours; waiters notice foreign sends by polling', { skip: noCc }, async () => {
  const exe = compileC(dir, 'msgc', msgc);
  const name = uniqueName('csv');
  const q = MessageQueue.create<Uint8Array>(name, { backend: 'sysv', codec: 'raw', pollInterval: 50 });
  const key = String(MessageQueue.sysvKey(name));
  try {
    const waiting = q.receiveMessage(T);
    await run(exe, ['send', key, '5', '7', 'hello from C']);
    const m = await waiting;
    assert.deepEqual([text(m.data), m.type, m.priority], ['hello from C', 5, 7]);

    await q.send(Buffer.from('hello from node'), { type: 3, priority: 2, ...T });
    const { stdout } = await run(exe, ['recv', key]);
    assert.equal(stdout, '3 2 hello from node\n');

    // mtype 1 does not encode a type (type 0): reported, dropped, and the queue goes on.
    await run(exe, ['raw', key, '1', 'plain']);
    await assert.rejects(q.receive(T), (e: any) => e.code === 'ERR_MULTIPROC_PROTOCOL' && /mtype 1\b/.test(e.message));
    await q.send(Buffer.from('after'), T);
    assert.equal(text(await q.receive(T)), 'after');
  } finally {
    await q.close();
  }
});

// msgp KEY SEGMENT TYPE PRIO TEXT: a sender with a priority other than 0,
// recording it in the queue's control segment first, as documented.
const msgp = `
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/msg.h>

int main(int argc, char **argv) {
  if (argc < 6) return 64;
  int id = msgget((key_t)atol(argv[1]), 0);
  if (id < 0) { perror("msgget"); return 1; }
  long type = atol(argv[3]);
  int p = atoi(argv[4]);
  if (p != 0) {
    int fd = shm_open(argv[2], O_RDWR, 0);
    if (fd < 0) { perror("shm_open"); return 1; }
    uint32_t *bits = mmap(NULL, 64 + 1056 * 4, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (bits == MAP_FAILED) { perror("mmap"); return 1; }
    bits += 16;                                                              /* byte 64 */
    __atomic_fetch_or(&bits[32 + p / 32], 1u << (p % 32), __ATOMIC_SEQ_CST);   /* the priority */
    __atomic_fetch_or(&bits[p / 1024], 1u << (p / 32 % 32), __ATOMIC_SEQ_CST); /* its summary bit */
  }
  struct { long mtype; char text[8192]; } m;
  m.mtype = type * 32768L + (32767 - p);
  size_t n = strlen(argv[5]);
  memcpy(m.text, argv[5], n);
  if (msgsnd(id, &m, n, 0) != 0) { perror("msgsnd"); return 1; }
  return 0;
}
`;

test('sysv: a C program that records its priorities as documented has them honoured by typed receives and by the order of receives', { skip: noCc }, async () => {
  const exe = compileC(dir, 'msgp', msgp, ['-lrt']);
  const name = uniqueName('cpr');
  const q = MessageQueue.create<Uint8Array>(name, { backend: 'sysv', codec: 'raw', pollInterval: 50 });
  const key = String(MessageQueue.sysvKey(name));
  const send = (type: number, priority: number, body: string) => run(exe, [key, `/mp.sysvq.${name}`, String(type), String(priority), body]);
  try {
    const msg = (m: { data: Uint8Array; type: number; priority: number }): string => `${text(m.data)} ${m.type} ${m.priority}`;
    // A receive of type 5 waiting for a message of priority 9 (it finds it by polling).
    const waiting = q.receiveMessage({ type: 5, ...T });
    await send(5, 9, 'w');
    assert.equal(msg(await waiting), 'w 5 9');
    await send(5, 0, 'a');
    await send(6, 3, 'b');
    await send(5, 7, 'c');
    await send(6, 1000, 'd');
    assert.equal(msg(await q.receiveMessage({ type: 5, ...T })), 'c 5 7');
    assert.deepEqual([msg(await q.receiveMessage(T)), msg(await q.receiveMessage(T)), msg(await q.receiveMessage(T))], ['d 6 1000', 'b 6 3', 'a 5 0']);
  } finally {
    await q.close();
  }
});
