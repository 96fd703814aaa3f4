#include "util.h"

#include <uv.h>

#include <cmath>
#include <cstring>

namespace multiproc {

using v8::Context;
using v8::Exception;
using v8::FunctionCallbackInfo;
using v8::FunctionTemplate;
using v8::Integer;
using v8::Isolate;
using v8::Local;
using v8::NewStringType;
using v8::Number;
using v8::Object;
using v8::SharedArrayBuffer;
using v8::String;
using v8::Value;

static Local<String> Str(Isolate* isolate, const char* s) {
  return String::NewFromUtf8(isolate, s, NewStringType::kNormal).ToLocalChecked();
}

void ThrowErrno(Isolate* isolate, int err, const char* syscall) {
  Local<Context> context = isolate->GetCurrentContext();
  Local<Value> error = Exception::Error(Str(isolate, strerror(err)));
  Local<Object> obj = error.As<Object>();
  obj->Set(context, Str(isolate, "code"), Str(isolate, uv_err_name(-err))).Check();
  obj->Set(context, Str(isolate, "errno"), Integer::New(isolate, -err)).Check();
  obj->Set(context, Str(isolate, "syscall"), Str(isolate, syscall)).Check();
  isolate->ThrowException(error);
}

void ThrowTypeError(Isolate* isolate, const char* message) {
  Local<Context> context = isolate->GetCurrentContext();
  Local<Object> obj = Exception::TypeError(Str(isolate, message)).As<Object>();
  obj->Set(context, Str(isolate, "code"), Str(isolate, "ERR_INVALID_ARG_TYPE")).Check();
  isolate->ThrowException(obj);
}

void ThrowRangeError(Isolate* isolate, const char* message) {
  Local<Context> context = isolate->GetCurrentContext();
  Local<Object> obj = Exception::RangeError(Str(isolate, message)).As<Object>();
  obj->Set(context, Str(isolate, "code"), Str(isolate, "ERR_OUT_OF_RANGE")).Check();
  isolate->ThrowException(obj);
}

void SetMethod(Local<Context> context, Local<Object> target, const char* name,
               v8::FunctionCallback callback, Local<Value> data) {
  Isolate* isolate = context->GetIsolate();
  Local<FunctionTemplate> t = FunctionTemplate::New(isolate, callback, data);
  Local<String> key = Str(isolate, name);
  Local<v8::Function> fn = t->GetFunction(context).ToLocalChecked();
  fn->SetName(key);
  target->Set(context, key, fn).Check();
}

void SetConstant(Local<Context> context, Local<Object> target, const char* name,
                 double value) {
  Isolate* isolate = context->GetIsolate();
  target->Set(context, Str(isolate, name), Number::New(isolate, value)).Check();
}

bool GetNumber(const FunctionCallbackInfo<Value>& args, int index, double* out) {
  if (!args[index]->IsNumber()) {
    ThrowTypeError(args.GetIsolate(), "expected a number");
    return false;
  }
  *out = args[index].As<Number>()->Value();
  if (std::isnan(*out)) {
    ThrowRangeError(args.GetIsolate(), "expected a number, got NaN");
    return false;
  }
  return true;
}

bool GetUint32(const FunctionCallbackInfo<Value>& args, int index, uint32_t* out) {
  if (!args[index]->IsUint32()) {
    ThrowTypeError(args.GetIsolate(), "expected an unsigned 32-bit integer");
    return false;
  }
  *out = args[index].As<v8::Uint32>()->Value();
  return true;
}

bool GetInt32(const FunctionCallbackInfo<Value>& args, int index, int32_t* out) {
  if (!args[index]->IsInt32()) {
    ThrowTypeError(args.GetIsolate(), "expected a 32-bit integer");
    return false;
  }
  *out = args[index].As<v8::Int32>()->Value();
  return true;
}

}  // namespace multiproc
