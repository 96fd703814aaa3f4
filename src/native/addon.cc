// Entry point: one function per mechanism adds its methods to the exports.
// Context-aware, so worker threads may load the addon too.
#include <node.h>

#include "futex.h"
#include "mapping.h"
#include "mutex.h"
#include "shm.h"

NODE_MODULE_INIT(/* exports, module, context */) {
  multiproc::InitMapping(context, exports);
  multiproc::InitShm(context, exports);
  multiproc::InitFutex(context, exports);
  multiproc::InitMutex(context, exports);
}
