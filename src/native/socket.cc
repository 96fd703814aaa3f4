// A listening Unix-domain socket, created here so that its file never exists
// with a wider mode than asked: on Linux, bind(2) gives the new socket file
// the mode of the socket's own inode minus the umask, and fchmod(2) on the
// still unbound descriptor sets that inode mode. No window between bind and
// chmod, no process-wide umask change (which worker threads cannot make).
// TypeScript hands the descriptor to net.Server.listen({ fd }).
#include "socket.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "util.h"

namespace multiproc {

using v8::Context;
using v8::FunctionCallbackInfo;
using v8::Local;
using v8::Object;
using v8::String;
using v8::Value;

namespace {

// Fills `addr` from a JS path; false (and a pending exception) when it does
// not fit. Abstract names are used at their exact length, as most programs
// (and newer libuv) do, not padded to the whole of sun_path.
bool UnixAddress(const FunctionCallbackInfo<Value>& args, const char* syscall, sockaddr_un* addr, socklen_t* addrlen, bool* abstract) {
  v8::Isolate* isolate = args.GetIsolate();
  if (!args[0]->IsString()) {
    ThrowTypeError(isolate, "path must be a string");
    return false;
  }
  String::Utf8Value path(isolate, args[0]);
  *addr = sockaddr_un{};
  addr->sun_family = AF_UNIX;
  size_t len = static_cast<size_t>(path.length());
  *abstract = len > 0 && (*path)[0] == '\0';
  // A file path needs room for its terminating NUL; an abstract name does not.
  if (len == 0 || len > sizeof(addr->sun_path) - (*abstract ? 0 : 1)) {
    ThrowErrno(isolate, ENAMETOOLONG, syscall);
    return false;
  }
  memcpy(addr->sun_path, *path, len);
  *addrlen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len + (*abstract ? 0 : 1));
  return true;
}

// unixConnect(path) -> fd, connected (a Unix connect completes at once or
// fails: ECONNREFUSED, ENOENT, or EAGAIN when the listener's backlog is full).
void UnixConnect(const FunctionCallbackInfo<Value>& args) {
  v8::Isolate* isolate = args.GetIsolate();
  sockaddr_un addr;
  socklen_t addrlen;
  bool abstract;
  if (!UnixAddress(args, "connect", &addr, &addrlen, &abstract)) return;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return ThrowErrno(isolate, errno, "socket");
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), addrlen) != 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(isolate, err, "connect");
  }
  args.GetReturnValue().Set(fd);
}

// unixListen(path, mode, backlog) -> fd. A path starting with NUL names the
// Linux abstract namespace (no file; mode does not apply).
void UnixListen(const FunctionCallbackInfo<Value>& args) {
  v8::Isolate* isolate = args.GetIsolate();
  sockaddr_un addr;
  socklen_t addrlen;
  bool abstract;
  if (!UnixAddress(args, "bind", &addr, &addrlen, &abstract)) return;
  int32_t mode, backlog;
  if (!GetInt32(args, 1, &mode) || !GetInt32(args, 2, &backlog)) return;

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return ThrowErrno(isolate, errno, "socket");
  const char* syscall = nullptr;
  if (!abstract && fchmod(fd, static_cast<mode_t>(mode & 0777)) != 0) {
    syscall = "fchmod";
  } else if (bind(fd, reinterpret_cast<sockaddr*>(&addr), addrlen) != 0) {
    syscall = "bind";
  } else if (listen(fd, backlog) != 0) {
    syscall = "listen";
  }
  if (syscall != nullptr) {
    int err = errno;
    // A bound file must not outlive a failed listen.
    if (!abstract && strcmp(syscall, "listen") == 0) unlink(addr.sun_path);
    close(fd);
    return ThrowErrno(isolate, err, syscall);
  }
  args.GetReturnValue().Set(fd);
}

// setSendBuffer(fd, bytes) -> the send buffer the kernel granted (it clamps
// the request to net.core.wmem_max and reports twice the payload room).
void SetSendBuffer(const FunctionCallbackInfo<Value>& args) {
  v8::Isolate* isolate = args.GetIsolate();
  int32_t fd, bytes;
  if (!GetInt32(args, 0, &fd) || !GetInt32(args, 1, &bytes)) return;
  if (fd < 0 || bytes <= 0) return ThrowRangeError(isolate, "expected a descriptor and a positive size");
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes) != 0) return ThrowErrno(isolate, errno, "setsockopt");
  int granted = 0;
  socklen_t len = sizeof granted;
  if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &granted, &len) != 0) return ThrowErrno(isolate, errno, "getsockopt");
  args.GetReturnValue().Set(granted);
}

}  // namespace

void InitSocket(Local<Context> context, Local<Object> exports) {
  SetMethod(context, exports, "unixListen", UnixListen);
  SetMethod(context, exports, "unixConnect", UnixConnect);
  SetMethod(context, exports, "setSendBuffer", SetSendBuffer);
}

}  // namespace multiproc
