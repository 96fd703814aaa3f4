// Cross-process handoff latency of the reference locks: the same three-lock
// rotation as bench/lock-trial.ts, so the two measure the same thing.
//
// Locks L0, L1, L2. The measuring process A starts holding L0 and L1, the
// partner B holds L2. Step i of A: unlock L[i%3], lock L[(i+2)%3]. Step i of
// B: lock L[i%3], unlock L[(i+2)%3]. Each lock call waits for a lock the
// other process holds, and each unlock is what the other side waits for, so
// the processes strictly alternate: one step of A is one round trip, two
// handoffs (A -> B -> A). Only owners ever unlock, as a mutex requires.
//
// Usage: lock_handoff <pthread|pthread-robust|futex|futex-spin> <roundTrips> <warmup>
// Prints one JSON line: {"roundTripNs":[...]} (one sample per measured round trip).
#include <signal.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "locks.h"

struct shared {
  ref_lock locks[3];
  _Atomic uint32_t ready;
};

static void partner(struct shared* s, enum ref_kind kind, long steps, pid_t parent) {
  // Never outlive the measuring process, even if it is killed.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(3);
  ref_lock_acquire(&s->locks[2], kind);
  atomic_store(&s->ready, 1);
  for (long i = 0; i < steps; i++) {
    ref_lock_acquire(&s->locks[i % 3], kind);
    ref_lock_release(&s->locks[(i + 2) % 3], kind);
  }
  // B ends holding L[(steps-1)%3].
  ref_lock_release(&s->locks[(steps - 1) % 3], kind);
  _exit(0);
}

int main(int argc, char** argv) {
  enum ref_kind kind;
  if (argc != 4 || ref_kind_parse(argv[1], &kind) != 0 || atol(argv[2]) <= 0 || atol(argv[3]) < 0) {
    fprintf(stderr, "usage: %s <pthread|pthread-robust|futex|futex-spin> <roundTrips> <warmup>\n", argv[0]);
    return 2;
  }
  long n = atol(argv[2]);
  long warmup = atol(argv[3]);
  long steps = n + warmup;
  struct shared* s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (s == MAP_FAILED) ref_die("mmap", errno);
  for (int i = 0; i < 3; i++) ref_init(&s->locks[i], kind);
  uint64_t* samples = malloc(sizeof(uint64_t) * (size_t)n);
  if (samples == NULL) ref_die("malloc", ENOMEM);

  ref_lock_acquire(&s->locks[0], kind);
  ref_lock_acquire(&s->locks[1], kind);
  pid_t self = getpid();
  fflush(stdout);
  pid_t child = fork();
  if (child < 0) ref_die("fork", errno);
  if (child == 0) partner(s, kind, steps, self);
  while (atomic_load(&s->ready) == 0) sched_yield();

  uint64_t last = ref_now_ns();
  for (long i = 0; i < steps; i++) {
    ref_lock_release(&s->locks[i % 3], kind);
    ref_lock_acquire(&s->locks[(i + 2) % 3], kind);
    uint64_t now = ref_now_ns();
    if (i >= warmup) samples[i - warmup] = now - last;
    last = now;
  }
  // A ends holding L[steps%3] and L[(steps+1)%3]; the third went to B.
  ref_lock_release(&s->locks[steps % 3], kind);
  ref_lock_release(&s->locks[(steps + 1) % 3], kind);
  int status;
  if (waitpid(child, &status, 0) < 0) ref_die("waitpid", errno);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "partner failed (status %d)\n", status);
    return 1;
  }
  fputs("{\"roundTripNs\":[", stdout);
  for (long i = 0; i < n; i++) printf(i ? ",%llu" : "%llu", (unsigned long long)samples[i]);
  fputs("]}\n", stdout);
  return 0;
}
