// Unix-domain listening sockets whose file gets its mode at bind(2) time.
#pragma once
#include <node.h>

namespace multiproc {
void InitSocket(v8::Local<v8::Context> context, v8::Local<v8::Object> exports);
}
