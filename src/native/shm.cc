// POSIX shared-memory names live in /dev/shm on Linux; the descriptor that
// shm_open returns is an ordinary fd, so TypeScript sizes and closes it with
// node:fs and only the name operations need the addon.
#include "shm.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>

#include "util.h"

namespace multiproc {

using v8::Context;
using v8::FunctionCallbackInfo;
using v8::Local;
using v8::Object;
using v8::String;
using v8::Value;

namespace {

bool CheckName(const FunctionCallbackInfo<Value>& args) {
  if (!args[0]->IsString()) {
    ThrowTypeError(args.GetIsolate(), "name must be a string");
    return false;
  }
  return true;
}

// open(name, oflag, mode) -> fd
void Open(const FunctionCallbackInfo<Value>& args) {
  if (!CheckName(args)) return;
  String::Utf8Value name(args.GetIsolate(), args[0]);
  int32_t oflag, mode;
  if (!GetInt32(args, 1, &oflag) || !GetInt32(args, 2, &mode)) return;
  oflag &= O_RDONLY | O_RDWR | O_CREAT | O_EXCL | O_TRUNC;
  int fd = shm_open(*name, oflag | O_CLOEXEC, static_cast<mode_t>(mode & 07777));
  if (fd < 0) return ThrowErrno(args.GetIsolate(), errno, "shm_open");
  // shm_open honours the umask; a segment we create gets exactly the mode
  // the caller asked for. An existing one keeps its own.
  if ((oflag & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL)) fchmod(fd, static_cast<mode_t>(mode & 07777));
  args.GetReturnValue().Set(fd);
}

void Unlink(const FunctionCallbackInfo<Value>& args) {
  if (!CheckName(args)) return;
  String::Utf8Value name(args.GetIsolate(), args[0]);
  if (shm_unlink(*name) != 0) return ThrowErrno(args.GetIsolate(), errno, "shm_unlink");
}

}  // namespace

void InitShm(Local<Context> context, Local<Object> exports) {
  SetMethod(context, exports, "shmOpen", Open);
  SetMethod(context, exports, "shmUnlink", Unlink);
  SetConstant(context, exports, "O_RDONLY", O_RDONLY);
  SetConstant(context, exports, "O_RDWR", O_RDWR);
  SetConstant(context, exports, "O_CREAT", O_CREAT);
  SetConstant(context, exports, "O_EXCL", O_EXCL);
}

}  // namespace multiproc
