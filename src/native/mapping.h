// mmap/munmap/msync: the memory half of SharedMemory and MemoryMap.
#pragma once
#include <node.h>

namespace multiproc {
void InitMapping(v8::Local<v8::Context> context, v8::Local<v8::Object> exports);
}
