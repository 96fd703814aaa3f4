// POSIX message queues (mq_open) and an event-loop watch on their descriptors.
#pragma once
#include <node.h>

namespace multiproc {

void InitMqueue(v8::Local<v8::Context> context, v8::Local<v8::Object> exports);

}  // namespace multiproc
