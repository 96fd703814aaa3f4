// Whole-file advisory locks (flock(2)) for appenders of a shared file.
#pragma once
#include <node.h>

namespace multiproc {

void InitFileLock(v8::Local<v8::Context> context, v8::Local<v8::Object> exports);

}  // namespace multiproc
