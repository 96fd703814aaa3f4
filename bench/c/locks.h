// Reference locks for the lock benchmarks: what a C program on this machine
// gets from glibc and from a bare futex. Every lock lives in MAP_SHARED
// memory and uses shared (not process-private) futex operations, as the
// library's Mutex does.
#pragma once
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

// Spins of the spinning futex variant: the same count as Mutex.acquireSync.
#define REF_SPINS 200

enum ref_kind { REF_PTHREAD, REF_PTHREAD_ROBUST, REF_FUTEX, REF_FUTEX_SPIN };

// One lock slot: 64 bytes, the footprint of the library's Mutex.
typedef union {
  pthread_mutex_t pthread;
  _Atomic uint32_t word;
  char pad[64];
} ref_lock;

static inline int ref_kind_parse(const char* s, enum ref_kind* out) {
  if (strcmp(s, "pthread") == 0) *out = REF_PTHREAD;
  else if (strcmp(s, "pthread-robust") == 0) *out = REF_PTHREAD_ROBUST;
  else if (strcmp(s, "futex") == 0) *out = REF_FUTEX;
  else if (strcmp(s, "futex-spin") == 0) *out = REF_FUTEX_SPIN;
  else return -1;
  return 0;
}

static inline void ref_die(const char* what, int err) {
  fprintf(stderr, "%s: %s\n", what, strerror(err));
  exit(2);
}

static inline void ref_init(ref_lock* l, enum ref_kind kind) {
  memset(l, 0, sizeof *l);
  if (kind != REF_PTHREAD && kind != REF_PTHREAD_ROBUST) return;
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  int e = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  if (e == 0 && kind == REF_PTHREAD_ROBUST) e = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  if (e == 0) e = pthread_mutex_init(&l->pthread, &a);
  if (e != 0) ref_die("pthread_mutex_init", e);
  pthread_mutexattr_destroy(&a);
}

static inline long ref_futex(_Atomic uint32_t* w, int op, uint32_t val) {
  return syscall(SYS_futex, (uint32_t*)w, op, val, NULL, NULL, 0);
}

static inline void ref_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield");
#endif
}

// Drepper, "Futexes Are Tricky", mutex 3: 0 free, 1 locked, 2 locked with
// waiters. Unlock calls futex only when someone may sleep.
static inline void ref_futex_lock(_Atomic uint32_t* w, int spins) {
  uint32_t c = 0;
  if (atomic_compare_exchange_strong(w, &c, 1)) return;
  for (int i = 0; i < spins; i++) {
    ref_pause();
    c = 0;
    if (atomic_load_explicit(w, memory_order_relaxed) == 0 && atomic_compare_exchange_strong(w, &c, 1)) return;
  }
  if (c != 2) c = atomic_exchange(w, 2);
  while (c != 0) {
    ref_futex(w, FUTEX_WAIT, 2);
    c = atomic_exchange(w, 2);
  }
}

static inline void ref_futex_unlock(_Atomic uint32_t* w) {
  if (atomic_fetch_sub(w, 1) != 1) {
    atomic_store(w, 0);
    ref_futex(w, FUTEX_WAKE, 1);
  }
}

static inline void ref_lock_acquire(ref_lock* l, enum ref_kind kind) {
  switch (kind) {
    case REF_PTHREAD:
    case REF_PTHREAD_ROBUST: {
      int e = pthread_mutex_lock(&l->pthread);
      if (e != 0) ref_die("pthread_mutex_lock", e);
      break;
    }
    case REF_FUTEX: ref_futex_lock(&l->word, 0); break;
    case REF_FUTEX_SPIN: ref_futex_lock(&l->word, REF_SPINS); break;
  }
}

static inline void ref_lock_release(ref_lock* l, enum ref_kind kind) {
  switch (kind) {
    case REF_PTHREAD:
    case REF_PTHREAD_ROBUST: {
      int e = pthread_mutex_unlock(&l->pthread);
      if (e != 0) ref_die("pthread_mutex_unlock", e);
      break;
    }
    case REF_FUTEX:
    case REF_FUTEX_SPIN: ref_futex_unlock(&l->word); break;
  }
}

static inline uint64_t ref_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
