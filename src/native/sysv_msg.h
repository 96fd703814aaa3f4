// System V message queues (msgget/msgsnd/msgrcv/msgctl), always IPC_NOWAIT.
#pragma once
#include <node.h>

namespace multiproc {

void InitSysvMsg(v8::Local<v8::Context> context, v8::Local<v8::Object> exports);

}  // namespace multiproc
