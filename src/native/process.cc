// prctl(PR_SET_PDEATHSIG) makes the kernel signal this process when its
// parent dies, so a child never outlives the process that spawned it, even
// when that one is SIGKILLed. Two Linux quirks the caller must handle:
// - the signal fires when the parent *thread* that forked exits, not the
//   parent process: spawn from a thread that lives as long as the parent;
// - if the parent died before this call, nothing will ever fire: compare
//   the returned parent pid with the expected one and exit on a mismatch.
#include "process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>

#include "util.h"

namespace multiproc {

using v8::Context;
using v8::FunctionCallbackInfo;
using v8::Local;
using v8::Object;
using v8::Value;

namespace {

// setParentDeathSignal(sig) -> the parent pid right after the call.
// sig 0 clears it.
void SetParentDeathSignal(const FunctionCallbackInfo<Value>& args) {
  int32_t sig;
  if (!GetInt32(args, 0, &sig)) return;
  if (sig < 0 || sig >= NSIG) return ThrowRangeError(args.GetIsolate(), "signal number out of range");
  if (prctl(PR_SET_PDEATHSIG, static_cast<unsigned long>(sig), 0, 0, 0) != 0) {
    return ThrowErrno(args.GetIsolate(), errno, "prctl");
  }
  args.GetReturnValue().Set(static_cast<int32_t>(getppid()));
}

// getParentDeathSignal() -> the signal number, 0 when none is set.
void GetParentDeathSignal(const FunctionCallbackInfo<Value>& args) {
  int sig = 0;
  if (prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0) != 0) return ThrowErrno(args.GetIsolate(), errno, "prctl");
  args.GetReturnValue().Set(sig);
}

// setCloseOnExec(fd, on): descriptors a child inherited (its control
// socket) must not leak further into the processes it starts.
void SetCloseOnExec(const FunctionCallbackInfo<Value>& args) {
  int32_t fd;
  if (!GetInt32(args, 0, &fd)) return;
  bool on = args[1]->BooleanValue(args.GetIsolate());
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0) return ThrowErrno(args.GetIsolate(), errno, "fcntl");
  int next = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
  if (next != flags && fcntl(fd, F_SETFD, next) != 0) return ThrowErrno(args.GetIsolate(), errno, "fcntl");
}

}  // namespace

void InitProcess(Local<Context> context, Local<Object> exports) {
  SetMethod(context, exports, "setParentDeathSignal", SetParentDeathSignal);
  SetMethod(context, exports, "getParentDeathSignal", GetParentDeathSignal);
  SetMethod(context, exports, "setCloseOnExec", SetCloseOnExec);
}

}  // namespace multiproc
