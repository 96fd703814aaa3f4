// Doorbells: one process wakes another's event loop directly.
//
// A waiter parked on a futex needs a thread to sleep in futex(2) and a
// uv_async_t to reach the event loop: two wake-ups and a thread hop per
// message. A doorbell is a datagram socket the event loop itself polls, so a
// sender's one sendto(2) is the only wake-up. Each environment (main thread
// or worker) owns one, bound to an autobound abstract name ("\0" and five hex
// digits, chosen by the kernel): no file to clean up, gone with the process.
// The datagram carries a 32-bit token that says which waiter to wake.
//
// Anyone on the host may send to an abstract name; a stray datagram only
// makes a waiter look at its ring again, so that is harmless.
#include "bell.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "util.h"

namespace multiproc {

using v8::FunctionCallbackInfo;
using v8::Isolate;
using v8::Local;
using v8::Value;

namespace {

constexpr int kBatch = 64;

struct Bell {
  Isolate* isolate = nullptr;
  int fd = -1;
  int id = -1;
  uv_poll_t handle;
  bool open = false;
  v8::Global<v8::Function> callback;
};

// One unbound socket per process sends every ring; sendto(2) on it is
// thread-safe, and it never blocks (MSG_DONTWAIT).
int sender_fd = -1;
std::mutex sender_mutex;

int SenderFd() {
  std::lock_guard<std::mutex> lock(sender_mutex);
  if (sender_fd < 0) sender_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  return sender_fd;
}

socklen_t AddressOf(int id, struct sockaddr_un* addr) {
  memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  // Abstract: sun_path[0] is NUL, then the five hex digits of the autobind name.
  snprintf(addr->sun_path + 1, sizeof(addr->sun_path) - 1, "%05x", static_cast<unsigned>(id));
  return static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + 6);
}

void OnReadable(uv_poll_t* handle, int status, int events) {
  Bell* bell = static_cast<Bell*>(handle->data);
  Isolate* isolate = bell->isolate;
  v8::HandleScope scope(isolate);
  if (bell->callback.IsEmpty()) return;
  Local<v8::Function> fn = bell->callback.Get(isolate);
  Local<v8::Context> context = fn->GetCreationContextChecked();
  v8::Context::Scope context_scope(context);
  if (status < 0) {
    // A broken socket would report itself on every turn: stop, and tell
    // JavaScript (null), which wakes its waiters and stops using the doorbell.
    uv_poll_stop(handle);
    Local<Value> argv[] = {v8::Null(isolate)};
    node::MakeCallback(isolate, context->Global(), fn, 1, argv, {0, 0});
    return;
  }
  // Drain everything queued: tokens, in arrival order.
  Local<v8::Array> tokens = v8::Array::New(isolate);
  uint32_t n = 0;
  for (;;) {
    int32_t token;
    ssize_t r = recv(bell->fd, &token, sizeof(token), MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (r != sizeof(token)) continue;  // not one of ours
    tokens->Set(context, n++, v8::Number::New(isolate, token)).Check();
    if (n >= 4096) break;  // let the loop breathe; level-triggered, it comes back
  }
  if (n == 0) return;
  Local<Value> argv[] = {tokens};
  node::MakeCallback(isolate, context->Global(), fn, 1, argv, {0, 0});
}

void Cleanup(void* arg) {
  Bell* bell = static_cast<Bell*>(arg);
  bell->callback.Reset();
  if (!bell->open) {
    delete bell;
    return;
  }
  uv_poll_stop(&bell->handle);
  uv_close(reinterpret_cast<uv_handle_t*>(&bell->handle), [](uv_handle_t* h) {
    Bell* b = static_cast<Bell*>(h->data);
    close(b->fd);
    delete b;
  });
}

Bell* GetBell(const FunctionCallbackInfo<Value>& args) {
  return static_cast<Bell*>(args.Data().As<v8::External>()->Value());
}

// bellOpen(callback(tokens)) -> id (the autobound name as a number). Opens
// this environment's doorbell once; later calls return the same id.
void Open(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  Bell* bell = GetBell(args);
  if (!args[0]->IsFunction()) return ThrowTypeError(isolate, "callback must be a function");
  if (bell->open) return args.GetReturnValue().Set(bell->id);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return ThrowErrno(isolate, errno, "socket");
  // Autobind: an address of just the family asks the kernel for a unique abstract name.
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(sa_family_t)) != 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(isolate, err, "bind");
  }
  socklen_t len = sizeof(addr);
  memset(&addr, 0, sizeof(addr));
  if (getsockname(fd, reinterpret_cast<struct sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(isolate, err, "getsockname");
  }
  unsigned id = 0;
  int used = 0;
  bool ok = len == offsetof(struct sockaddr_un, sun_path) + 6 && addr.sun_path[0] == '\0' &&
            sscanf(addr.sun_path + 1, "%5x%n", &id, &used) == 1 && used == 5;
  if (!ok) {
    close(fd);
    return ThrowErrno(isolate, EAFNOSUPPORT, "getsockname");
  }
  int err = uv_poll_init(node::GetCurrentEventLoop(isolate), &bell->handle, fd);
  if (err == 0) err = uv_poll_start(&bell->handle, UV_READABLE, OnReadable);
  if (err != 0) {
    close(fd);
    return ThrowErrno(isolate, -err, "uv_poll_start");
  }
  bell->handle.data = bell;
  uv_unref(reinterpret_cast<uv_handle_t*>(&bell->handle));
  bell->fd = fd;
  bell->id = static_cast<int>(id);
  bell->open = true;
  bell->callback.Reset(isolate, args[0].As<v8::Function>());
  args.GetReturnValue().Set(bell->id);
}

// bellRef(on): whether the doorbell keeps the event loop alive (while some
// waiter counts on it).
void Ref(const FunctionCallbackInfo<Value>& args) {
  Bell* bell = GetBell(args);
  if (!bell->open) return;
  uv_handle_t* h = reinterpret_cast<uv_handle_t*>(&bell->handle);
  if (args[0]->BooleanValue(args.GetIsolate())) {
    uv_ref(h);
  } else {
    uv_unref(h);
  }
}

// bellRing(id, token) -> 0, or the errno: ECONNREFUSED (nobody has that
// doorbell any more), EAGAIN (its queue is full: it is awake anyway).
void Ring(const FunctionCallbackInfo<Value>& args) {
  int32_t id, token;
  if (!GetInt32(args, 0, &id) || !GetInt32(args, 1, &token)) return;
  if (id < 0 || id > 0xfffff) return ThrowRangeError(args.GetIsolate(), "bad doorbell id");
  int fd = SenderFd();
  if (fd < 0) return args.GetReturnValue().Set(errno);
  struct sockaddr_un addr;
  socklen_t len = AddressOf(id, &addr);
  for (;;) {
    ssize_t r = sendto(fd, &token, sizeof(token), MSG_DONTWAIT | MSG_NOSIGNAL,
                       reinterpret_cast<struct sockaddr*>(&addr), len);
    if (r >= 0) return args.GetReturnValue().Set(0);
    if (errno != EINTR) return args.GetReturnValue().Set(errno);
  }
}

}  // namespace

void InitBell(Local<v8::Context> context, Local<v8::Object> exports) {
  Isolate* isolate = context->GetIsolate();
  Bell* bell = new Bell();
  bell->isolate = isolate;
  node::AddEnvironmentCleanupHook(isolate, Cleanup, bell);
  Local<v8::External> data = v8::External::New(isolate, bell);
  SetMethod(context, exports, "bellOpen", Open, data);
  SetMethod(context, exports, "bellRef", Ref, data);
  SetMethod(context, exports, "bellRing", Ring, data);
}

}  // namespace multiproc
