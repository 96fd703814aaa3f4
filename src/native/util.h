// Small helpers shared by every mechanism: argument access, method
// registration and the one place errno becomes a JavaScript error.
#pragma once

#include <node.h>
#include <v8.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace multiproc {

// Throws an Error carrying code ('ENOENT'), errno (negative, as Node does)
// and syscall. TypeScript adds the object's name and a hint.
void ThrowErrno(v8::Isolate* isolate, int err, const char* syscall);
void ThrowTypeError(v8::Isolate* isolate, const char* message);
void ThrowRangeError(v8::Isolate* isolate, const char* message);

void SetMethod(v8::Local<v8::Context> context, v8::Local<v8::Object> target,
               const char* name, v8::FunctionCallback callback,
               v8::Local<v8::Value> data = v8::Local<v8::Value>());
void SetConstant(v8::Local<v8::Context> context, v8::Local<v8::Object> target,
                 const char* name, double value);

// A 32-bit word inside a SharedArrayBuffer, checked for bounds and alignment.
// TypeScript validates first; these checks keep a bad call from reaching
// memory it does not own.
struct WordRef {
  uint32_t* ptr = nullptr;
  v8::Local<v8::SharedArrayBuffer> buffer;
};
// Inline: this sits on the uncontended lock path, where every nanosecond shows.
// `align` must be a power of two.
inline bool GetWord(const v8::FunctionCallbackInfo<v8::Value>& args, int index,
                    size_t span, size_t align, WordRef* out) {
  if (!args[index]->IsSharedArrayBuffer()) {
    ThrowTypeError(args.GetIsolate(), "expected a SharedArrayBuffer");
    return false;
  }
  v8::Local<v8::SharedArrayBuffer> sab = args[index].As<v8::SharedArrayBuffer>();
  if (!args[index + 1]->IsUint32()) {
    ThrowRangeError(args.GetIsolate(), "offset must be an unsigned 32-bit integer");
    return false;
  }
  size_t off = args[index + 1].As<v8::Uint32>()->Value();
  if (off + span > sab->ByteLength()) {
    ThrowRangeError(args.GetIsolate(), "offset is outside the buffer");
    return false;
  }
  uintptr_t addr = reinterpret_cast<uintptr_t>(sab->Data()) + off;
  if ((addr & (align - 1)) != 0) {
    ThrowRangeError(args.GetIsolate(), "offset is not aligned");
    return false;
  }
  out->ptr = reinterpret_cast<uint32_t*>(addr);
  out->buffer = sab;
  return true;
}

bool GetUint32(const v8::FunctionCallbackInfo<v8::Value>& args, int index,
               uint32_t* out);
bool GetInt32(const v8::FunctionCallbackInfo<v8::Value>& args, int index,
              int32_t* out);
bool GetNumber(const v8::FunctionCallbackInfo<v8::Value>& args, int index,
               double* out);

}  // namespace multiproc
