// Robust mutex on the kernel's robust-futex ABI.
#pragma once
#include <node.h>

#include <cstddef>
#include <cstdint>
#include <sched.h>

#include <atomic>
#include <mutex>

namespace multiproc {
void InitMutex(v8::Local<v8::Context> context, v8::Local<v8::Object> exports);

// Guards the record of the mutex words held by any thread of this process.
// A thread takes a word and records it under this lock, so whoever holds it
// and finds no word inside a range knows none will appear there meanwhile:
// mapping.cc holds it while it replaces a mapping's pages, which would wipe
// the robust-list links of a held mutex under its holder.
// A spin lock: its sections are a few stores, and every acquire and release
// of a Mutex takes it, uncontended nearly always (a std::mutex cost a
// lock-and-release pair tens of nanoseconds more). A waiter yields the CPU
// after a few spins, for the rare long holder (a mapping being replaced).
class HeldWordsLock {
 public:
  void lock() {
    for (int spins = 0; flag_.exchange(true, std::memory_order_acquire); spins++) {
      if (spins >= 64) sched_yield();
    }
  }
  void unlock() { flag_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> flag_{false};
};
HeldWordsLock& HeldWordsMutex();
// Number of held words in [begin, begin + length). Caller holds HeldWordsMutex().
int HeldWordsIn(uintptr_t begin, size_t length);
}  // namespace multiproc
