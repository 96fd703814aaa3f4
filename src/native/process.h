// Child-process plumbing: the parent-death signal and close-on-exec.
#pragma once
#include <node.h>

namespace multiproc {
void InitProcess(v8::Local<v8::Context> context, v8::Local<v8::Object> exports);
}
