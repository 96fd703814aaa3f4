// Doorbells: a datagram socket the event loop polls, rung by other processes.
#pragma once
#include <node.h>

namespace multiproc {

void InitBell(v8::Local<v8::Context> context, v8::Local<v8::Object> exports);

}  // namespace multiproc
