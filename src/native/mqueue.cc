// POSIX message queues.
//
// Queues are always opened O_NONBLOCK: mq_send and mq_receive either succeed
// at once or fail with EAGAIN, and JavaScript waits on the event loop
// instead. On Linux a queue descriptor is a file descriptor that supports
// poll(2): readable while messages wait, writable while there is room. A
// "watch" is a uv_poll_t on it, started only while someone waits, so an idle
// queue keeps neither a thread nor the event loop alive.
//
// Every message carries an 8-byte header before the payload: the bytes
// 'M' 'P' 'Q' '1', then the message type as a little-endian int32. The
// kernel's own priority field carries the priority. A message without the
// header (from a program that does not know it) is returned with type 0, and
// TypeScript reports it.
#include "mqueue.h"

#include <fcntl.h>
#include <mqueue.h>
#include <node_buffer.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "util.h"

namespace multiproc {

using v8::ArrayBufferView;
using v8::Context;
using v8::External;
using v8::Function;
using v8::FunctionCallbackInfo;
using v8::Global;
using v8::HandleScope;
using v8::Int32Array;
using v8::Integer;
using v8::Isolate;
using v8::Local;
using v8::Object;
using v8::String;
using v8::Value;

namespace {

constexpr uint32_t kMagic = 0x3151504d;  // 'M' 'P' 'Q' '1' as a little-endian u32
constexpr size_t kHeader = 8;
// HARD_MSGSIZEMAX of Linux: mq_msgsize can never be larger.
constexpr uint32_t kHardMsgSizeMax = 16u << 20;

// mq_receive needs room for the queue's largest message and mq_send needs
// header and payload in one piece: one scratch buffer per thread serves both.
thread_local std::vector<unsigned char> scratch;

inline void PutLE32(unsigned char* p, uint32_t v) {
  p[0] = static_cast<unsigned char>(v);
  p[1] = static_cast<unsigned char>(v >> 8);
  p[2] = static_cast<unsigned char>(v >> 16);
  p[3] = static_cast<unsigned char>(v >> 24);
}

inline uint32_t GetLE32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

bool GetDescriptor(const FunctionCallbackInfo<Value>& args, int index, mqd_t* out) {
  int32_t fd;
  if (!GetInt32(args, index, &fd)) return false;
  if (fd < 0) {
    ThrowRangeError(args.GetIsolate(), "invalid queue descriptor");
    return false;
  }
  *out = static_cast<mqd_t>(fd);
  return true;
}

// Int32Array out-parameter with at least `n` elements, backed by an explicit ArrayBuffer.
int32_t* GetOut(const FunctionCallbackInfo<Value>& args, int index, size_t n) {
  if (!args[index]->IsInt32Array()) {
    ThrowTypeError(args.GetIsolate(), "expected an Int32Array");
    return nullptr;
  }
  Local<Int32Array> out = args[index].As<Int32Array>();
  if (out->Length() < n) {
    ThrowRangeError(args.GetIsolate(), "out array too short");
    return nullptr;
  }
  return reinterpret_cast<int32_t*>(static_cast<char*>(out->Buffer()->Data()) + out->ByteOffset());
}

// mqOpen(name, oflag, mode, maxmsg, msgsize) -> descriptor. maxmsg 0: kernel defaults.
void Open(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  if (!args[0]->IsString()) return ThrowTypeError(isolate, "name must be a string");
  String::Utf8Value name(isolate, args[0]);
  int32_t oflag, mode;
  double maxmsg, msgsize;
  if (!GetInt32(args, 1, &oflag) || !GetInt32(args, 2, &mode) || !GetNumber(args, 3, &maxmsg) ||
      !GetNumber(args, 4, &msgsize)) {
    return;
  }
  oflag &= O_RDONLY | O_WRONLY | O_RDWR | O_CREAT | O_EXCL;
  struct mq_attr attr = {};
  attr.mq_maxmsg = static_cast<long>(maxmsg);
  attr.mq_msgsize = static_cast<long>(msgsize);
  struct mq_attr* wanted = ((oflag & O_CREAT) != 0 && maxmsg > 0) ? &attr : nullptr;
  mqd_t q = mq_open(*name, oflag | O_NONBLOCK, static_cast<mode_t>(mode & 07777), wanted);
  if (q == static_cast<mqd_t>(-1)) return ThrowErrno(isolate, errno, "mq_open");
  // mq_open honours the umask; a queue we create gets exactly the mode asked for.
  if ((oflag & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL)) fchmod(q, static_cast<mode_t>(mode & 07777));
  args.GetReturnValue().Set(static_cast<int32_t>(q));
}

void Close(const FunctionCallbackInfo<Value>& args) {
  mqd_t q;
  if (!GetDescriptor(args, 0, &q)) return;
  if (mq_close(q) != 0) ThrowErrno(args.GetIsolate(), errno, "mq_close");
}

void Unlink(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  if (!args[0]->IsString()) return ThrowTypeError(isolate, "name must be a string");
  String::Utf8Value name(isolate, args[0]);
  if (mq_unlink(*name) != 0) ThrowErrno(isolate, errno, "mq_unlink");
}

// mqGetattr(q, out) : out = [maxmsg, msgsize, curmsgs]
void GetAttr(const FunctionCallbackInfo<Value>& args) {
  mqd_t q;
  if (!GetDescriptor(args, 0, &q)) return;
  int32_t* out = GetOut(args, 1, 3);
  if (out == nullptr) return;
  struct mq_attr attr = {};
  if (mq_getattr(q, &attr) != 0) return ThrowErrno(args.GetIsolate(), errno, "mq_getattr");
  out[0] = static_cast<int32_t>(attr.mq_maxmsg);
  out[1] = static_cast<int32_t>(attr.mq_msgsize);
  out[2] = static_cast<int32_t>(attr.mq_curmsgs);
}

// mqSend(q, type, payload, priority) -> true | false (full)
void Send(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  mqd_t q;
  int32_t type;
  uint32_t prio;
  if (!GetDescriptor(args, 0, &q) || !GetInt32(args, 1, &type) || !GetUint32(args, 3, &prio)) return;
  if (!args[2]->IsArrayBufferView()) return ThrowTypeError(isolate, "payload must be a Uint8Array");
  Local<ArrayBufferView> view = args[2].As<ArrayBufferView>();
  size_t len = view->ByteLength();
  if (scratch.size() < kHeader + len) scratch.resize(kHeader + len);
  PutLE32(scratch.data(), kMagic);
  PutLE32(scratch.data() + 4, static_cast<uint32_t>(type));
  // CopyContents also works for small arrays whose bytes live on the V8 heap.
  if (len > 0) view->CopyContents(scratch.data() + kHeader, len);
  if (mq_send(q, reinterpret_cast<const char*>(scratch.data()), kHeader + len, prio) == 0) {
    return args.GetReturnValue().Set(true);
  }
  if (errno == EAGAIN) return args.GetReturnValue().Set(false);
  ThrowErrno(isolate, errno, "mq_send");
}

// mqReceive(q, msgsize, out) -> Buffer | null (empty); out = [type (0: no header), priority, raw length]
void Receive(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  mqd_t q;
  uint32_t msgsize;
  if (!GetDescriptor(args, 0, &q) || !GetUint32(args, 1, &msgsize)) return;
  int32_t* out = GetOut(args, 2, 3);
  if (out == nullptr) return;
  // No queue takes messages above the kernel's hard limit (16 MiB): refuse
  // before allocating a buffer of whatever size was asked.
  if (msgsize > kHardMsgSizeMax + kHeader) return ThrowRangeError(isolate, "msgsize is above the kernel's limit for message queues");
  size_t room = std::max<size_t>(msgsize, kHeader);
  if (scratch.size() < room) scratch.resize(room);
  unsigned prio = 0;
  ssize_t n = mq_receive(q, reinterpret_cast<char*>(scratch.data()), scratch.size(), &prio);
  if (n < 0) {
    if (errno == EAGAIN) return args.GetReturnValue().SetNull();
    return ThrowErrno(isolate, errno, "mq_receive");
  }
  const unsigned char* data = scratch.data();
  size_t len = static_cast<size_t>(n);
  int32_t type = 0;
  if (len >= kHeader && GetLE32(data) == kMagic) {
    type = static_cast<int32_t>(GetLE32(data + 4));
    data += kHeader;
    len -= kHeader;
  }
  out[0] = type;
  out[1] = static_cast<int32_t>(prio);
  out[2] = static_cast<int32_t>(n);
  Local<Object> buffer;
  if (!node::Buffer::Copy(isolate, reinterpret_cast<const char*>(data), len).ToLocal(&buffer)) return;
  args.GetReturnValue().Set(buffer);
}

// --- watches ---------------------------------------------------------------

struct Registry;

struct Watch {
  uv_poll_t handle;
  Registry* registry;
  Global<Function> callback;
};

// Per environment (main thread or worker): the watches it opened, by id, so
// a stale id from JavaScript can never reach freed memory.
struct Registry {
  Isolate* isolate;
  uint32_t next_id = 1;
  std::unordered_map<uint32_t, Watch*> watches;
};

Registry* GetRegistry(const FunctionCallbackInfo<Value>& args) {
  return static_cast<Registry*>(args.Data().As<External>()->Value());
}

void OnPoll(uv_poll_t* handle, int status, int events) {
  Watch* w = static_cast<Watch*>(handle->data);
  Isolate* isolate = w->registry->isolate;
  HandleScope scope(isolate);
  if (w->callback.IsEmpty()) return;
  Local<Function> fn = w->callback.Get(isolate);
  Local<Context> context = fn->GetCreationContextChecked();
  Context::Scope context_scope(context);
  Local<Value> argv[] = {Integer::New(isolate, status < 0 ? status : events)};
  // MakeCallback drains the microtask queue, so the woken receives finish
  // before the loop moves on.
  node::MakeCallback(isolate, context->Global(), fn, 1, argv, {0, 0});
}

void CloseWatch(Watch* w) {
  w->callback.Reset();
  uv_close(reinterpret_cast<uv_handle_t*>(&w->handle),
           [](uv_handle_t* h) { delete static_cast<Watch*>(h->data); });
}

// mqWatch(fd, callback(eventsOrError)) -> id
void WatchOpen(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  Registry* registry = GetRegistry(args);
  int32_t fd;
  if (!GetInt32(args, 0, &fd)) return;
  if (!args[1]->IsFunction()) return ThrowTypeError(isolate, "callback must be a function");
  Watch* w = new Watch();
  w->registry = registry;
  int err = uv_poll_init(node::GetCurrentEventLoop(isolate), &w->handle, fd);
  if (err != 0) {
    delete w;
    return ThrowErrno(isolate, -err, "uv_poll_init");
  }
  w->handle.data = w;
  w->callback.Reset(isolate, args[1].As<Function>());
  uint32_t id = registry->next_id++;
  registry->watches[id] = w;
  args.GetReturnValue().Set(id);
}

// mqWatchSet(id, events): UV_READABLE | UV_WRITABLE, or 0 to stop.
void WatchSet(const FunctionCallbackInfo<Value>& args) {
  Registry* registry = GetRegistry(args);
  uint32_t id, events;
  if (!GetUint32(args, 0, &id) || !GetUint32(args, 1, &events)) return;
  auto it = registry->watches.find(id);
  if (it == registry->watches.end()) return ThrowRangeError(args.GetIsolate(), "no such watch");
  events &= UV_READABLE | UV_WRITABLE;
  int err = events == 0 ? uv_poll_stop(&it->second->handle)
                        : uv_poll_start(&it->second->handle, static_cast<int>(events), OnPoll);
  if (err != 0) ThrowErrno(args.GetIsolate(), -err, "uv_poll_start");
}

void WatchClose(const FunctionCallbackInfo<Value>& args) {
  Registry* registry = GetRegistry(args);
  uint32_t id;
  if (!GetUint32(args, 0, &id)) return;
  auto it = registry->watches.find(id);
  if (it == registry->watches.end()) return;
  Watch* w = it->second;
  registry->watches.erase(it);
  CloseWatch(w);
}

void Cleanup(void* arg) {
  Registry* registry = static_cast<Registry*>(arg);
  for (auto& entry : registry->watches) CloseWatch(entry.second);
  delete registry;
}

}  // namespace

void InitMqueue(Local<Context> context, Local<Object> exports) {
  Isolate* isolate = context->GetIsolate();
  Registry* registry = new Registry();
  registry->isolate = isolate;
  node::AddEnvironmentCleanupHook(isolate, Cleanup, registry);
  Local<External> data = External::New(isolate, registry);
  SetMethod(context, exports, "mqOpen", Open);
  SetMethod(context, exports, "mqClose", Close);
  SetMethod(context, exports, "mqUnlink", Unlink);
  SetMethod(context, exports, "mqGetattr", GetAttr);
  SetMethod(context, exports, "mqSend", Send);
  SetMethod(context, exports, "mqReceive", Receive);
  SetMethod(context, exports, "mqWatch", WatchOpen, data);
  SetMethod(context, exports, "mqWatchSet", WatchSet, data);
  SetMethod(context, exports, "mqWatchClose", WatchClose, data);
  long prio_max = sysconf(_SC_MQ_PRIO_MAX);
  SetConstant(context, exports, "MQ_PRIO_MAX", prio_max > 0 ? static_cast<double>(prio_max) : 32768.0);
  SetConstant(context, exports, "MQ_HEADER", kHeader);
  SetConstant(context, exports, "O_WRONLY", O_WRONLY);
  SetConstant(context, exports, "UV_READABLE", UV_READABLE);
  SetConstant(context, exports, "UV_WRITABLE", UV_WRITABLE);
}

}  // namespace multiproc
