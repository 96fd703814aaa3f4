// Pipes and FIFOs: pipe2, mkfifo, opening a FIFO without blocking, and the
// pipe-specific fcntl/ioctl calls. Reading and writing go through libuv
// (net.Socket over the descriptor), so nothing here blocks or uses a thread.
#pragma once
#include <node.h>

namespace multiproc {
void InitFd(v8::Local<v8::Context> context, v8::Local<v8::Object> exports);
}
