/*
 * C reference for the channel benchmark: the same two measurements the Node
 * peers make, between a parent and a forked child, over
 *   pipe        two pipes (one per direction)
 *   socketpair  one AF_UNIX SOCK_STREAM socket pair
 *   tcp         one loopback TCP connection (TCP_NODELAY)
 *   ring        two single-producer single-consumer byte rings in an
 *               anonymous shared mapping; a waiting side spins briefly, then
 *               sleeps on a futex, and the other side wakes it only when it
 *               said it sleeps
 *
 * usage: ipc_ref MECH SIZE WARMUP ROUNDTRIPS ONEWAY_COUNT ONEWAY_WARMUP
 *                [PARKED_WARMUP PARKED_ROUNDTRIPS GAP_US JITTER]
 * prints one JSON object: round-trip percentiles (microseconds) and the
 * one-way time (seconds from the first send to the receiver's 1-byte report).
 * With the parked arguments, after the busy round trips come round trips to
 * an idle peer: the parent sleeps GAP_US x (1 +- JITTER, at random) before
 * each, long enough for the child to stop spinning and sleep in the kernel
 * (on the futex for the ring, in read(2) for the streams); only send -> reply
 * is timed, and their percentiles are printed as "parked".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
  perror(what);
  exit(2);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- byte streams over file descriptors ---- */

static void write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      die("write");
    }
    p += w;
    n -= (size_t)w;
  }
}

static void read_all(int fd, char *p, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      die("read");
    }
    if (r == 0) {
      fprintf(stderr, "unexpected end of stream\n");
      exit(2);
    }
    p += r;
    n -= (size_t)r;
  }
}

/* ---- SPSC byte ring with futex sleep ---- */

#define RING_BYTES (4u << 20)
#define SPIN 2000

struct ring {
  _Atomic uint64_t head; /* bytes written, producer only */
  char pad1[56];
  _Atomic uint64_t tail; /* bytes read, consumer only */
  char pad2[56];
  _Atomic uint32_t consumer_sleeps;
  _Atomic uint32_t producer_sleeps;
  char pad3[56];
  char data[RING_BYTES];
};

static long futex(_Atomic uint32_t *addr, int op, uint32_t val) {
  return syscall(SYS_futex, (uint32_t *)addr, op, val, NULL, NULL, 0);
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/* Waits until cond(ring) holds: spin, then announce the sleep in *flag and
 * re-check (seq_cst on both sides, so either we see the update or the other
 * side sees the flag), then sleep. */
static void ring_wait(struct ring *r, _Atomic uint32_t *flag, int (*ready)(struct ring *, size_t), size_t arg) {
  for (int i = 0; i < SPIN; i++) {
    if (ready(r, arg)) return;
    cpu_relax();
  }
  for (;;) {
    atomic_store(flag, 1);
    if (ready(r, arg)) {
      atomic_store(flag, 0);
      return;
    }
    futex(flag, FUTEX_WAIT, 1);
  }
}

static void ring_wake(_Atomic uint32_t *flag) {
  if (atomic_load(flag)) {
    atomic_store(flag, 0);
    futex(flag, FUTEX_WAKE, 1);
  }
}

static int has_room(struct ring *r, size_t want) {
  (void)want;
  return atomic_load(&r->head) - atomic_load(&r->tail) < RING_BYTES;
}

static int has_data(struct ring *r, size_t want) {
  (void)want;
  return atomic_load(&r->head) != atomic_load(&r->tail);
}

static void ring_write(struct ring *r, const char *p, size_t n) {
  uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
  while (n > 0) {
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    size_t room = RING_BYTES - (size_t)(head - tail);
    if (room == 0) {
      ring_wait(r, &r->producer_sleeps, has_room, 0);
      continue;
    }
    size_t off = (size_t)(head % RING_BYTES);
    size_t chunk = n < room ? n : room;
    if (chunk > RING_BYTES - off) chunk = RING_BYTES - off;
    memcpy(r->data + off, p, chunk);
    head += chunk;
    p += chunk;
    n -= chunk;
    atomic_store(&r->head, head);
    ring_wake(&r->consumer_sleeps);
  }
}

static void ring_read(struct ring *r, char *p, size_t n) {
  uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
  while (n > 0) {
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    size_t avail = (size_t)(head - tail);
    if (avail == 0) {
      ring_wait(r, &r->consumer_sleeps, has_data, 0);
      continue;
    }
    size_t off = (size_t)(tail % RING_BYTES);
    size_t chunk = n < avail ? n : avail;
    if (chunk > RING_BYTES - off) chunk = RING_BYTES - off;
    memcpy(p, r->data + off, chunk);
    tail += chunk;
    p += chunk;
    n -= chunk;
    atomic_store(&r->tail, tail);
    ring_wake(&r->producer_sleeps);
  }
}

/* ---- one endpoint: how to send and receive n bytes ---- */

enum mech { PIPE, SOCKETPAIR, TCP, RING };

struct end {
  enum mech mech;
  int rfd, wfd;
  struct ring *in, *out;
};

static void end_send(struct end *e, const char *p, size_t n) {
  if (e->mech == RING) ring_write(e->out, p, n);
  else write_all(e->wfd, p, n);
}

static void end_recv(struct end *e, char *p, size_t n) {
  if (e->mech == RING) ring_read(e->in, p, n);
  else read_all(e->rfd, p, n);
}

static void sleep_us(double us) {
  struct timespec ts = { (time_t)(us / 1e6), (long)((us - (double)(time_t)(us / 1e6) * 1e6) * 1e3) };
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* {"n":..,"p50":..,"p99":..,"mean":..} of n latencies (sorts them). */
static void print_rtt(double *lat, long n) {
  qsort(lat, (size_t)n, sizeof(double), cmp_double);
  double sum = 0;
  for (long i = 0; i < n; i++) sum += lat[i];
  long i50 = (long)(0.50 * (double)(n - 1) + 0.5), i99 = (long)(0.99 * (double)(n - 1) + 0.5);
  printf("{\"n\":%ld,\"p50\":%.3f,\"p99\":%.3f,\"mean\":%.3f}", n, lat[i50], lat[i99], sum / (double)n);
}

int main(int argc, char **argv) {
  if (argc != 7 && argc != 11) {
    fprintf(stderr, "usage: %s pipe|socketpair|tcp|ring SIZE WARMUP ROUNDTRIPS ONEWAY_COUNT ONEWAY_WARMUP [PARKED_WARMUP PARKED_ROUNDTRIPS GAP_US JITTER]\n", argv[0]);
    return 2;
  }
  enum mech mech;
  if (strcmp(argv[1], "pipe") == 0) mech = PIPE;
  else if (strcmp(argv[1], "socketpair") == 0) mech = SOCKETPAIR;
  else if (strcmp(argv[1], "tcp") == 0) mech = TCP;
  else if (strcmp(argv[1], "ring") == 0) mech = RING;
  else {
    fprintf(stderr, "unknown mechanism %s\n", argv[1]);
    return 2;
  }
  size_t size = strtoul(argv[2], NULL, 10);
  long warm = strtol(argv[3], NULL, 10);
  long rtts = strtol(argv[4], NULL, 10);
  long count = strtol(argv[5], NULL, 10);
  long owarm = strtol(argv[6], NULL, 10);
  long pwarm = argc == 11 ? strtol(argv[7], NULL, 10) : 0;
  long prtts = argc == 11 ? strtol(argv[8], NULL, 10) : 0;
  double gap_us = argc == 11 ? strtod(argv[9], NULL) : 0;
  double jitter = argc == 11 ? strtod(argv[10], NULL) : 0;
  if (prtts <= 0) pwarm = prtts = 0;
  if (size == 0 || rtts < 1 || count < 1 || pwarm < 0 || gap_us < 0 || jitter < 0 || jitter >= 1) {
    fprintf(stderr, "bad arguments\n");
    return 2;
  }

  struct end parent = { mech, -1, -1, NULL, NULL }, child = parent;
  if (mech == PIPE) {
    int ab[2], ba[2];
    if (pipe(ab) < 0 || pipe(ba) < 0) die("pipe");
    parent.wfd = ab[1];
    parent.rfd = ba[0];
    child.rfd = ab[0];
    child.wfd = ba[1];
  } else if (mech == SOCKETPAIR) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) die("socketpair");
    parent.rfd = parent.wfd = sv[0];
    child.rfd = child.wfd = sv[1];
  } else if (mech == TCP) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 1) < 0 || getsockname(l, (struct sockaddr *)&a, &alen) < 0) die("listen");
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    int s = accept(l, NULL, NULL);
    if (s < 0) die("accept");
    close(l);
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    parent.rfd = parent.wfd = c;
    child.rfd = child.wfd = s;
  } else {
    void *m = mmap(NULL, 2 * sizeof(struct ring), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) die("mmap");
    struct ring *ab = m, *ba = ab + 1;
    parent.out = ab;
    parent.in = ba;
    child.in = ab;
    child.out = ba;
  }

  char *buf = malloc(size);
  if (!buf) die("malloc");
  memset(buf, 'x', size);
  char ack = 'k';
  pid_t parent_pid = getpid();
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent_pid) _exit(3);
    for (long i = 0; i < warm + rtts + pwarm + prtts; i++) {
      end_recv(&child, buf, size);
      end_send(&child, buf, size);
    }
    for (long i = 0; i < owarm; i++) end_recv(&child, buf, size);
    end_send(&child, &ack, 1);
    for (long i = 0; i < count; i++) end_recv(&child, buf, size);
    end_send(&child, &ack, 1);
    _exit(0);
  }

  double *lat = malloc(sizeof(double) * (size_t)rtts);
  if (!lat) die("malloc");
  for (long i = 0; i < warm + rtts; i++) {
    double t0 = now_s();
    end_send(&parent, buf, size);
    end_recv(&parent, buf, size);
    if (i >= warm) lat[i - warm] = (now_s() - t0) * 1e6;
  }
  double *plat = malloc(sizeof(double) * (size_t)(prtts > 0 ? prtts : 1));
  if (!plat) die("malloc");
  srand48((long)getpid() ^ (long)(now_s() * 1e6));
  for (long i = 0; i < pwarm + prtts; i++) {
    sleep_us(gap_us * (1 + jitter * (2 * drand48() - 1)));
    double t0 = now_s();
    end_send(&parent, buf, size);
    end_recv(&parent, buf, size);
    if (i >= pwarm) plat[i - pwarm] = (now_s() - t0) * 1e6;
  }
  for (long i = 0; i < owarm; i++) end_send(&parent, buf, size);
  end_recv(&parent, &ack, 1);
  double t0 = now_s();
  for (long i = 0; i < count; i++) end_send(&parent, buf, size);
  end_recv(&parent, &ack, 1);
  double elapsed = now_s() - t0;

  int status;
  if (waitpid(pid, &status, 0) < 0) die("waitpid");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "child failed (status %d)\n", status);
    return 2;
  }
  printf("{\"rtt\":");
  print_rtt(lat, rtts);
  if (prtts > 0) {
    printf(",\"parked\":");
    print_rtt(plat, prtts);
  }
  printf(",\"oneway\":{\"n\":%ld,\"seconds\":%.9f}}\n", count, elapsed);
  return 0;
}
