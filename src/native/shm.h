// shm_open/shm_unlink: the name half of SharedMemory (mapping.cc maps it).
#pragma once
#include <node.h>

namespace multiproc {
void InitShm(v8::Local<v8::Context> context, v8::Local<v8::Object> exports);
}
