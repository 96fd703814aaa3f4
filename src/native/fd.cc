// Descriptor helpers for Pipe and NamedPipe.
//
// Node has no pipe(2) or mkfifo(3), and opening a FIFO through fs.open would
// block a threadpool thread until the other side appears (nodejs/node#23220).
// Here every FIFO open carries O_NONBLOCK: a reader's open returns at once, a
// writer's fails with ENXIO while no reader exists and TypeScript retries on a
// timer. Every descriptor is created with O_CLOEXEC, so it reaches a child only
// when passed explicitly in its stdio array (libuv dup2s it there).
#include "fd.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>

#include "util.h"

namespace multiproc {

using v8::Array;
using v8::Context;
using v8::FunctionCallbackInfo;
using v8::Integer;
using v8::Isolate;
using v8::Local;
using v8::Object;
using v8::String;
using v8::Value;

namespace {

bool GetPath(const FunctionCallbackInfo<Value>& args, int index) {
  if (!args[index]->IsString()) {
    ThrowTypeError(args.GetIsolate(), "path must be a string");
    return false;
  }
  return true;
}

bool GetFd(const FunctionCallbackInfo<Value>& args, int index, int* fd) {
  int32_t v;
  if (!GetInt32(args, index, &v)) return false;
  if (v < 0) {
    ThrowRangeError(args.GetIsolate(), "fd must be >= 0");
    return false;
  }
  *fd = v;
  return true;
}

// pipe() -> [readFd, writeFd]
void Pipe(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return ThrowErrno(isolate, errno, "pipe2");
  Local<Context> context = isolate->GetCurrentContext();
  Local<Array> out = Array::New(isolate, 2);
  out->Set(context, 0, Integer::New(isolate, fds[0])).Check();
  out->Set(context, 1, Integer::New(isolate, fds[1])).Check();
  args.GetReturnValue().Set(out);
}

// mkfifo(path, mode): the FIFO gets exactly `mode`, whatever the umask. The
// umask can only remove bits, so the node is never more open than asked,
// even between the two calls.
void MakeFifo(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  if (!GetPath(args, 0)) return;
  int32_t mode;
  if (!GetInt32(args, 1, &mode)) return;
  String::Utf8Value path(isolate, args[0]);
  mode_t m = static_cast<mode_t>(mode & 0777);
  if (mkfifo(*path, m) != 0) return ThrowErrno(isolate, errno, "mkfifo");
  if (chmod(*path, m) != 0) {
    int err = errno;
    unlink(*path);
    return ThrowErrno(isolate, err, "chmod");
  }
}

// openFifo(path, accmode) -> fd, opened O_NONBLOCK | O_CLOEXEC.
void OpenFifo(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  if (!GetPath(args, 0)) return;
  int32_t acc;
  if (!GetInt32(args, 1, &acc)) return;
  acc &= O_ACCMODE;
  String::Utf8Value path(isolate, args[0]);
  int fd;
  do {
    fd = open(*path, acc | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ThrowErrno(isolate, errno, "open");
  args.GetReturnValue().Set(fd);
}

// closeFd(fd): for descriptors opened here (shm_open, pipe). fs.closeSync on
// them makes a worker thread warn, since its fd tracking never saw them open.
void CloseFd(const FunctionCallbackInfo<Value>& args) {
  int fd;
  if (!GetFd(args, 0, &fd)) return;
  // Linux frees the descriptor even when close fails (EINTR included): never retry.
  if (close(fd) != 0 && errno != EINTR) ThrowErrno(args.GetIsolate(), errno, "close");
}

// fdAccessMode(fd) -> O_RDONLY | O_WRONLY | O_RDWR
void FdAccessMode(const FunctionCallbackInfo<Value>& args) {
  int fd;
  if (!GetFd(args, 0, &fd)) return;
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return ThrowErrno(args.GetIsolate(), errno, "fcntl");
  args.GetReturnValue().Set(flags & O_ACCMODE);
}

// pipeQueued(fd) -> bytes written to the pipe and not yet read (FIONREAD
// works on either end of a Linux pipe).
void PipeQueued(const FunctionCallbackInfo<Value>& args) {
  int fd;
  if (!GetFd(args, 0, &fd)) return;
  int n = 0;
  if (ioctl(fd, FIONREAD, &n) != 0) return ThrowErrno(args.GetIsolate(), errno, "ioctl");
  args.GetReturnValue().Set(n);
}

// pipeCapacity(fd) -> the pipe's buffer size in bytes.
void PipeCapacity(const FunctionCallbackInfo<Value>& args) {
  int fd;
  if (!GetFd(args, 0, &fd)) return;
  int n = fcntl(fd, F_GETPIPE_SZ);
  if (n < 0) return ThrowErrno(args.GetIsolate(), errno, "fcntl");
  args.GetReturnValue().Set(n);
}

// setPipeCapacity(fd, bytes) -> the size the kernel chose (rounded up to a
// power-of-two number of pages; EPERM above /proc/sys/fs/pipe-max-size for
// unprivileged processes).
void SetPipeCapacity(const FunctionCallbackInfo<Value>& args) {
  int fd;
  int32_t size;
  if (!GetFd(args, 0, &fd) || !GetInt32(args, 1, &size)) return;
  int n = fcntl(fd, F_SETPIPE_SZ, size);
  if (n < 0) return ThrowErrno(args.GetIsolate(), errno, "fcntl");
  args.GetReturnValue().Set(n);
}

// readInto(fd, view) -> bytes read into the view, 0 at end of stream, -1
// when nothing is ready (EAGAIN). For a non-blocking descriptor whose owner
// (libuv) polls it level-triggered: reading ahead of it only makes its next
// read find less.
void ReadInto(const FunctionCallbackInfo<Value>& args) {
  int fd;
  if (!GetFd(args, 0, &fd)) return;
  if (!args[1]->IsArrayBufferView()) return ThrowTypeError(args.GetIsolate(), "expected an ArrayBufferView");
  v8::Local<v8::ArrayBufferView> view = args[1].As<v8::ArrayBufferView>();
  size_t length = view->ByteLength();
  if (length == 0) return args.GetReturnValue().Set(0);
  char* data = static_cast<char*>(view->Buffer()->Data()) + view->ByteOffset();
  ssize_t n;
  do {
    n = read(fd, data, length);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return args.GetReturnValue().Set(-1);
    return ThrowErrno(args.GetIsolate(), errno, "read");
  }
  args.GetReturnValue().Set(static_cast<double>(n));
}

// writeFrom(fd, head, body) -> bytes written of head then body (one
// writev), -1 when the descriptor takes nothing now (EAGAIN). For a
// non-blocking descriptor with nothing queued in its owner (libuv): the
// caller writes the rest, if any, through the owner.
void WriteFrom(const FunctionCallbackInfo<Value>& args) {
  int fd;
  if (!GetFd(args, 0, &fd)) return;
  if (!args[1]->IsArrayBufferView() || !args[2]->IsArrayBufferView()) {
    return ThrowTypeError(args.GetIsolate(), "expected two ArrayBufferViews");
  }
  struct iovec iov[2];
  for (int i = 0; i < 2; i++) {
    v8::Local<v8::ArrayBufferView> view = args[1 + i].As<v8::ArrayBufferView>();
    iov[i].iov_len = view->ByteLength();
    iov[i].iov_base = iov[i].iov_len == 0 ? nullptr : static_cast<char*>(view->Buffer()->Data()) + view->ByteOffset();
  }
  ssize_t n;
  do {
    n = writev(fd, iov, 2);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return args.GetReturnValue().Set(-1);
    return ThrowErrno(args.GetIsolate(), errno, "writev");
  }
  args.GetReturnValue().Set(static_cast<double>(n));
}

}  // namespace

void InitFd(Local<Context> context, Local<Object> exports) {
  SetMethod(context, exports, "pipe", Pipe);
  SetMethod(context, exports, "mkfifo", MakeFifo);
  SetMethod(context, exports, "openFifo", OpenFifo);
  SetMethod(context, exports, "closeFd", CloseFd);
  SetMethod(context, exports, "fdAccessMode", FdAccessMode);
  SetMethod(context, exports, "pipeQueued", PipeQueued);
  SetMethod(context, exports, "pipeCapacity", PipeCapacity);
  SetMethod(context, exports, "setPipeCapacity", SetPipeCapacity);
  SetMethod(context, exports, "readInto", ReadInto);
  SetMethod(context, exports, "writeFrom", WriteFrom);
  SetConstant(context, exports, "PIPE_BUF", PIPE_BUF);
}

}  // namespace multiproc
