// Entry point: one function per mechanism adds its methods to the exports.
// Context-aware, so worker threads may load the addon too.
#include <dlfcn.h>
#include <node.h>

#include "bell.h"
#include "fd.h"
#include "file_lock.h"
#include "futex.h"
#include "mapping.h"
#include "mqueue.h"
#include "mutex.h"
#include "process.h"
#include "shm.h"
#include "sysv_msg.h"
#include "socket.h"

namespace {

// Node unloads an addon when the last environment that loaded it goes away,
// but libuv may still run our close callbacks after that, and robust-list
// entries and backing-store deleters may point into our code. Pin the
// library for the life of the process.
void PinLibrary() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&PinLibrary), &info) != 0 && info.dli_fname != nullptr) {
    dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE);
  }
}

}  // namespace

NODE_MODULE_INIT(/* exports, module, context */) {
  PinLibrary();
  multiproc::InitMapping(context, exports);
  multiproc::InitShm(context, exports);
  multiproc::InitFutex(context, exports);
  multiproc::InitBell(context, exports);
  multiproc::InitMutex(context, exports);
  multiproc::InitMqueue(context, exports);
  multiproc::InitSysvMsg(context, exports);
  multiproc::InitProcess(context, exports);
  multiproc::InitFd(context, exports);
  multiproc::InitSocket(context, exports);
  multiproc::InitFileLock(context, exports);
}
