// Futex wait/wake on words inside shared memory, and the waiter service that
// lets the event loop wait on many futexes without a thread per waiter.
#pragma once
#include <node.h>

#include <cstdint>

namespace multiproc {

// Shared (not process-private) futex operations, usable across processes.
long FutexWake(uint32_t* addr, int count);
// Returns 0 when woken, EAGAIN when *addr != expected, ETIMEDOUT at the
// deadline. timeout_ms < 0 waits forever. EINTR restarts with the time left.
int FutexWait(uint32_t* addr, uint32_t expected, double timeout_ms);

void InitFutex(v8::Local<v8::Context> context, v8::Local<v8::Object> exports);

}  // namespace multiproc
