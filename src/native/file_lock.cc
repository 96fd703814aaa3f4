// flock(2): a lock that belongs to an open file description and that the
// kernel drops when the last descriptor of it closes - also when its process
// is killed - so a writer that dies while appending never leaves the file
// locked. Node has no binding for it.
#include "file_lock.h"

#include <sys/file.h>

#include <cerrno>

#include "util.h"

namespace multiproc {

using v8::Context;
using v8::FunctionCallbackInfo;
using v8::Local;
using v8::Object;
using v8::Value;

namespace {

// flock(fd, wait, shared) -> true when locked (exclusively, or shared when
// `shared`), false when another description holds a conflicting lock and
// `wait` is false.
void Lock(const FunctionCallbackInfo<Value>& args) {
  int32_t fd;
  if (!GetInt32(args, 0, &fd)) return;
  int op = (args[2]->IsTrue() ? LOCK_SH : LOCK_EX) | (args[1]->IsTrue() ? 0 : LOCK_NB);
  for (;;) {
    if (flock(fd, op) == 0) return args.GetReturnValue().Set(true);
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return args.GetReturnValue().Set(false);
    return ThrowErrno(args.GetIsolate(), errno, "flock");
  }
}

void Unlock(const FunctionCallbackInfo<Value>& args) {
  int32_t fd;
  if (!GetInt32(args, 0, &fd)) return;
  if (flock(fd, LOCK_UN) != 0) return ThrowErrno(args.GetIsolate(), errno, "flock");
}

}  // namespace

void InitFileLock(Local<Context> context, Local<Object> exports) {
  SetMethod(context, exports, "fileLock", Lock);
  SetMethod(context, exports, "fileUnlock", Unlock);
}

}  // namespace multiproc
