// Robust mutex on the kernel's robust-futex ABI.
#pragma once
#include <node.h>

#include <cstddef>
#include <cstdint>
#include <mutex>

namespace multiproc {
void InitMutex(v8::Local<v8::Context> context, v8::Local<v8::Object> exports);

// Guards the record of the mutex words held by any thread of this process.
// A thread takes a word and records it under this lock, so whoever holds it
// and finds no word inside a range knows none will appear there meanwhile:
// mapping.cc holds it while it replaces a mapping's pages, which would wipe
// the robust-list links of a held mutex under its holder.
std::mutex& HeldWordsMutex();
// Number of held words in [begin, begin + length). Caller holds HeldWordsMutex().
int HeldWordsIn(uintptr_t begin, size_t length);
}  // namespace multiproc
