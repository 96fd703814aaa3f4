// Uncontended lock+unlock cost of the reference locks, in one process.
// Usage: lock_uncontended <pthread|pthread-robust|futex> <ops>
// Prints one JSON line: {"ops":N,"ns":total,"nsPerOp":x}
#include <sys/mman.h>

#include "locks.h"

int main(int argc, char** argv) {
  enum ref_kind kind;
  if (argc != 3 || ref_kind_parse(argv[1], &kind) != 0 || atol(argv[2]) <= 0) {
    fprintf(stderr, "usage: %s <pthread|pthread-robust|futex|futex-spin> <ops>\n", argv[0]);
    return 2;
  }
  long ops = atol(argv[2]);
  // Shared memory, like a lock placed in a SharedMemory segment.
  ref_lock* l = mmap(NULL, sizeof(ref_lock), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (l == MAP_FAILED) ref_die("mmap", errno);
  ref_init(l, kind);
  long warmup = ops / 10;
  for (long i = 0; i < warmup; i++) {
    ref_lock_acquire(l, kind);
    ref_lock_release(l, kind);
  }
  uint64_t t0 = ref_now_ns();
  for (long i = 0; i < ops; i++) {
    ref_lock_acquire(l, kind);
    ref_lock_release(l, kind);
  }
  uint64_t ns = ref_now_ns() - t0;
  printf("{\"ops\":%ld,\"ns\":%llu,\"nsPerOp\":%.3f}\n", ops, (unsigned long long)ns, (double)ns / (double)ops);
  return 0;
}
