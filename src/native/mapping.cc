// Every mapping is handed to JavaScript as a SharedArrayBuffer whose backing
// store is the mapped memory itself: no copy, and Atomics on it are real
// cross-process atomics. The backing store's deleter unmaps, so a buffer that
// was posted to a worker keeps the memory alive until the last holder drops it.
//
// release() cuts a mapping off from its file early. It cannot unmap while
// JavaScript may still hold the buffer (a later access would fault), so it
// replaces the pages in place with private anonymous memory: the segment or
// file is no longer referenced, stale views read zeros instead of crashing,
// and the deleter unmaps the placeholder later.
#include "mapping.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mutex.h"
#include "util.h"

namespace multiproc {

// The largest buffer V8 accepts. V8 11.9 (Node 22+) renamed the constant to
// kMaxByteLength; V8 13 (Node 24) removed the old TypedArray::kMaxLength.
#if V8_MAJOR_VERSION >= 12
constexpr size_t kMaxBufferLength = v8::TypedArray::kMaxByteLength;
#else
constexpr size_t kMaxBufferLength = v8::TypedArray::kMaxLength;
#endif

using v8::BackingStore;
using v8::Context;
using v8::FunctionCallbackInfo;
using v8::Isolate;
using v8::Local;
using v8::Object;
using v8::SharedArrayBuffer;
using v8::Value;

namespace {

struct Region {
  size_t length;
  bool released;
};

// Only addresses we mapped may be released or synced: a stray buffer must
// never reach mmap(MAP_FIXED).
std::mutex regions_mutex;
std::unordered_map<uintptr_t, Region>& Regions() {
  static auto* regions = new std::unordered_map<uintptr_t, Region>();
  return *regions;
}

size_t PageSize() {
  static size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

size_t RoundUp(size_t n) {
  size_t page = PageSize();
  return (n + page - 1) / page * page;
}

void Unmap(void* data, size_t length, void*) {
  {
    std::lock_guard<std::mutex> lock(regions_mutex);
    Regions().erase(reinterpret_cast<uintptr_t>(data));
  }
  munmap(data, RoundUp(length));
}

bool GetSize(const FunctionCallbackInfo<Value>& args, int index, size_t* out) {
  double v;
  if (!GetNumber(args, index, &v)) return false;
  if (v < 0 || v != std::floor(v) || v > 9007199254740991.0) {
    ThrowRangeError(args.GetIsolate(), "expected a non-negative integer");
    return false;
  }
  *out = static_cast<size_t>(v);
  return true;
}

// map(fd, offset, length, prot, flags) -> SharedArrayBuffer
void Map(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  int32_t fd, prot, flags;
  size_t offset, length;
  if (!GetInt32(args, 0, &fd) || !GetSize(args, 1, &offset) ||
      !GetSize(args, 2, &length) || !GetInt32(args, 3, &prot) ||
      !GetInt32(args, 4, &flags)) {
    return;
  }
  if (length == 0) return ThrowRangeError(isolate, "length must be positive");
  if (length > kMaxBufferLength) {
    return ThrowRangeError(isolate, "length exceeds the largest buffer; map a window");
  }
  if (offset % PageSize() != 0) {
    return ThrowRangeError(isolate, "offset must be a multiple of the page size");
  }
  prot &= PROT_READ | PROT_WRITE;
  flags &= MAP_SHARED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_POPULATE;
  void* data = mmap(nullptr, length, prot, flags, fd, static_cast<off_t>(offset));
  if (data == MAP_FAILED) return ThrowErrno(isolate, errno, "mmap");
  {
    std::lock_guard<std::mutex> lock(regions_mutex);
    Regions()[reinterpret_cast<uintptr_t>(data)] = Region{length, false};
  }
  std::unique_ptr<BackingStore> store =
      SharedArrayBuffer::NewBackingStore(data, length, Unmap, nullptr);
  args.GetReturnValue().Set(SharedArrayBuffer::New(isolate, std::move(store)));
}

bool FindRegion(const FunctionCallbackInfo<Value>& args, int index, void** data,
                Region** region) {
  if (!args[index]->IsSharedArrayBuffer()) {
    ThrowTypeError(args.GetIsolate(), "expected a SharedArrayBuffer");
    return false;
  }
  *data = args[index].As<SharedArrayBuffer>()->Data();
  auto it = Regions().find(reinterpret_cast<uintptr_t>(*data));
  if (it == Regions().end()) {
    ThrowTypeError(args.GetIsolate(), "buffer is not a multiproc mapping");
    return false;
  }
  *region = &it->second;
  return true;
}

// release(...buffers) -> boolean: detach this process from the mapped
// objects (see above). Releases none and returns false while any thread of
// the process holds a mutex inside one of them: the new pages would wipe the
// robust-list links the holder and the kernel follow.
void Release(const FunctionCallbackInfo<Value>& args) {
  std::lock_guard<std::mutex> lock(regions_mutex);
  // Held across the check and the replacement: no mutex can be taken
  // inside in between (see HeldWordsMutex).
  std::lock_guard<HeldWordsLock> held(HeldWordsMutex());
  std::vector<std::pair<void*, Region*>> found;
  for (int i = 0; i < args.Length(); i++) {
    void* data;
    Region* region;
    if (!FindRegion(args, i, &data, &region)) return;
    if (region->released) continue;
    if (HeldWordsIn(reinterpret_cast<uintptr_t>(data), region->length) > 0) {
      return args.GetReturnValue().Set(false);
    }
    found.emplace_back(data, region);
  }
  for (auto& [data, region] : found) {
    if (region->released) continue;  // the same buffer twice
    void* r = mmap(data, RoundUp(region->length), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED) return ThrowErrno(args.GetIsolate(), errno, "mmap");
    region->released = true;
  }
  args.GetReturnValue().Set(true);
}

// msync(buffer, offset, length, flags)
void Msync(const FunctionCallbackInfo<Value>& args) {
  void* data;
  Region* region;
  size_t offset, length;
  int32_t flags;
  {
    std::lock_guard<std::mutex> lock(regions_mutex);
    if (!FindRegion(args, 0, &data, &region)) return;
    if (!GetSize(args, 1, &offset) || !GetSize(args, 2, &length) ||
        !GetInt32(args, 3, &flags)) {
      return;
    }
    if (region->released) return;
    if (offset > region->length || length > region->length - offset) {
      return ThrowRangeError(args.GetIsolate(), "range is outside the mapping");
    }
  }
  if (length == 0) return;
  // msync wants a page-aligned start.
  uintptr_t start = reinterpret_cast<uintptr_t>(data) + offset;
  uintptr_t aligned = start / PageSize() * PageSize();
  flags &= MS_ASYNC | MS_SYNC | MS_INVALIDATE;
  if (msync(reinterpret_cast<void*>(aligned), length + (start - aligned), flags) != 0) {
    return ThrowErrno(args.GetIsolate(), errno, "msync");
  }
}

// The bytes of an ArrayBufferView argument (plain or shared memory).
bool GetView(const FunctionCallbackInfo<Value>& args, int index, char** data,
             size_t* length) {
  if (!args[index]->IsArrayBufferView()) {
    ThrowTypeError(args.GetIsolate(), "expected an ArrayBufferView");
    return false;
  }
  Local<v8::ArrayBufferView> view = args[index].As<v8::ArrayBufferView>();
  *length = view->ByteLength();
  *data = *length == 0 ? nullptr
                       : static_cast<char*>(view->Buffer()->Data()) + view->ByteOffset();
  return true;
}

// copyBytes(dst, dstOffset, src, srcOffset, length): memmove between views.
// V8 copies to or from a SharedArrayBuffer word by word with relaxed atomics,
// several times slower than memcpy on large messages; the ring's protocol
// already orders these bytes with its acquire/release counters.
void CopyBytes(const FunctionCallbackInfo<Value>& args) {
  char* dst;
  char* src;
  size_t dst_length, src_length, dst_offset, src_offset, length;
  if (!GetView(args, 0, &dst, &dst_length) || !GetSize(args, 1, &dst_offset) ||
      !GetView(args, 2, &src, &src_length) || !GetSize(args, 3, &src_offset) ||
      !GetSize(args, 4, &length)) {
    return;
  }
  if (dst_offset > dst_length || length > dst_length - dst_offset ||
      src_offset > src_length || length > src_length - src_offset) {
    return ThrowRangeError(args.GetIsolate(), "range is outside the view");
  }
  if (length == 0) return;
  memmove(dst + dst_offset, src + src_offset, length);
}

}  // namespace

void InitMapping(Local<Context> context, Local<Object> exports) {
  SetMethod(context, exports, "map", Map);
  SetMethod(context, exports, "release", Release);
  SetMethod(context, exports, "msync", Msync);
  SetMethod(context, exports, "copyBytes", CopyBytes);
  SetConstant(context, exports, "MAX_BUFFER", static_cast<double>(kMaxBufferLength));
  SetConstant(context, exports, "PAGE_SIZE", static_cast<double>(PageSize()));
  SetConstant(context, exports, "PROT_READ", PROT_READ);
  SetConstant(context, exports, "PROT_WRITE", PROT_WRITE);
  SetConstant(context, exports, "MAP_SHARED", MAP_SHARED);
  SetConstant(context, exports, "MAP_PRIVATE", MAP_PRIVATE);
  SetConstant(context, exports, "MAP_NORESERVE", MAP_NORESERVE);
  SetConstant(context, exports, "MAP_POPULATE", MAP_POPULATE);
  SetConstant(context, exports, "MS_ASYNC", MS_ASYNC);
  SetConstant(context, exports, "MS_SYNC", MS_SYNC);
  SetConstant(context, exports, "MS_INVALIDATE", MS_INVALIDATE);
}

}  // namespace multiproc
