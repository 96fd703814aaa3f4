// Robust mutex on the kernel's robust-futex ABI.
#pragma once
#include <node.h>

namespace multiproc {
void InitMutex(v8::Local<v8::Context> context, v8::Local<v8::Object> exports);
}
