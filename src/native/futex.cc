// Linux futexes for cross-process waiting.
//
// V8's Atomics.wait/notify keep their wait lists inside one process, so a
// process cannot wake another with them. The kernel's futex hash is keyed by
// the physical page for shared mappings, so FUTEX_WAIT/FUTEX_WAKE without the
// PRIVATE flag do reach across processes.
//
// Async waits: each environment (main thread or worker) owns a few waiter
// threads ("shards"). A shard sleeps in futex_waitv (Linux 5.16+) on up to 127
// registered words plus a control word used to make it rebuild its list.
// Waiters on the same word and value share one slot, so a thousand promises
// waiting on one lock cost one slot. When a word fires, the shard posts the
// waiter ids to the event loop through a uv_async_t; JavaScript re-checks its
// condition and registers again if needed.
#include "futex.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cmath>
#include <mutex>
#include <thread>
#include <vector>

#include "util.h"

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

namespace multiproc {

using v8::BackingStore;
using v8::Context;
using v8::External;
using v8::Function;
using v8::FunctionCallbackInfo;
using v8::Global;
using v8::HandleScope;
using v8::Isolate;
using v8::Local;
using v8::Number;
using v8::Object;
using v8::Value;

long FutexWake(uint32_t* addr, int count) {
  return syscall(SYS_futex, addr, FUTEX_WAKE, count, nullptr, nullptr, 0);
}

static void AddMs(struct timespec* ts, double ms) {
  double whole = std::floor(ms / 1000.0);
  ts->tv_sec += static_cast<time_t>(whole);
  ts->tv_nsec += static_cast<long>((ms - whole * 1000.0) * 1e6);
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec += 1;
    ts->tv_nsec -= 1000000000L;
  }
}

int FutexWait(uint32_t* addr, uint32_t expected, double timeout_ms) {
  struct timespec deadline;
  struct timespec* dl = nullptr;
  if (timeout_ms >= 0) {
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    AddMs(&deadline, std::min(timeout_ms, 1e12));
    dl = &deadline;
  }
  for (;;) {
    // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so a
    // signal that interrupts the wait does not stretch the timeout.
    long r = syscall(SYS_futex, addr, FUTEX_WAIT_BITSET, expected, dl, nullptr,
                     FUTEX_BITSET_MATCH_ANY);
    if (r == 0) return 0;
    if (errno == EINTR) continue;
    return errno;
  }
}

namespace {

constexpr size_t kSlotsPerShard = FUTEX_WAITV_MAX - 1;

struct Slot {
  uint32_t* addr;
  uint32_t expected;
  std::vector<double> ids;
  std::shared_ptr<BackingStore> keep;
};

struct Service;

struct Shard {
  Service* service;
  std::thread thread;
  std::atomic<uint32_t> control{0};
  std::vector<Slot> slots;                         // guarded by service->mutex
  std::vector<std::shared_ptr<BackingStore>> graveyard;  // freed on next rebuild
  void Poke() {
    control.fetch_add(1);
    // Private wake to match the private wait in Run(): private and shared
    // futex keys differ even for the same address.
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&control), FUTEX_WAKE_PRIVATE, 1,
            nullptr, nullptr, 0);
  }
  void Run();
};

struct Service {
  Isolate* isolate;
  uv_async_t async;
  Global<Function> callback;
  std::mutex mutex;
  bool stopping = false;
  std::vector<std::unique_ptr<Shard>> shards;  // guarded by mutex
  std::vector<double> fired;                   // guarded by mutex
  size_t registered = 0;                       // JS thread only
  bool referenced = false;                     // JS thread only

  void UpdateRef() {
    bool want = registered > 0;
    if (want == referenced) return;
    referenced = want;
    if (want) {
      uv_ref(reinterpret_cast<uv_handle_t*>(&async));
    } else {
      uv_unref(reinterpret_cast<uv_handle_t*>(&async));
    }
  }
};

// Moves every id of slot i to the fired list. Caller holds the mutex.
void Fire(Service* service, Shard* shard, size_t i) {
  Slot& slot = shard->slots[i];
  service->fired.insert(service->fired.end(), slot.ids.begin(), slot.ids.end());
  shard->graveyard.push_back(std::move(slot.keep));
  shard->slots.erase(shard->slots.begin() + static_cast<long>(i));
}

void Shard::Run() {
  std::vector<struct futex_waitv> list;
  for (;;) {
    list.clear();
    {
      std::lock_guard<std::mutex> lock(service->mutex);
      if (service->stopping) return;
      graveyard.clear();
      struct futex_waitv w = {};
      w.uaddr = reinterpret_cast<uintptr_t>(&control);
      w.val = control.load();
      w.flags = FUTEX_32 | FUTEX_PRIVATE_FLAG;
      list.push_back(w);
      for (const Slot& slot : slots) {
        struct futex_waitv s = {};
        s.uaddr = reinterpret_cast<uintptr_t>(slot.addr);
        s.val = slot.expected;
        s.flags = FUTEX_32;  // shared: woken by other processes
        list.push_back(s);
      }
    }
    long r = syscall(SYS_futex_waitv, list.data(), list.size(), 0, nullptr,
                     CLOCK_MONOTONIC);
    int err = r < 0 ? errno : 0;
    bool any = false;
    {
      std::lock_guard<std::mutex> lock(service->mutex);
      if (service->stopping) return;
      if (r > 0) {
        const struct futex_waitv& hit = list[static_cast<size_t>(r)];
        for (size_t i = 0; i < slots.size(); i++) {
          if (reinterpret_cast<uintptr_t>(slots[i].addr) == hit.uaddr &&
              slots[i].expected == hit.val) {
            Fire(service, this, i);
            any = true;
            break;
          }
        }
        // The wait it was for was cancelled meanwhile: the wake may be the
        // one a mutex's unlock gives a single waiter, so pass it on.
        if (!any) FutexWake(reinterpret_cast<uint32_t*>(hit.uaddr), 1);
      } else if (r < 0 && err != EINTR) {
        // EAGAIN: some word no longer holds its value (or the list changed);
        // anything else (EFAULT) is handled the same way: re-check them all.
        for (size_t i = slots.size(); i-- > 0;) {
          if (__atomic_load_n(slots[i].addr, __ATOMIC_SEQ_CST) != slots[i].expected) {
            Fire(service, this, i);
            any = true;
          }
        }
      }
    }
    if (any) uv_async_send(&service->async);
  }
}

void OnAsync(uv_async_t* handle) {
  Service* service = static_cast<Service*>(handle->data);
  std::vector<double> ids;
  {
    std::lock_guard<std::mutex> lock(service->mutex);
    ids.swap(service->fired);
  }
  if (ids.empty()) return;
  service->registered -= std::min(service->registered, ids.size());
  service->UpdateRef();
  Isolate* isolate = service->isolate;
  HandleScope scope(isolate);
  if (service->callback.IsEmpty()) return;
  Local<Function> fn = service->callback.Get(isolate);
  Local<Context> context = fn->GetCreationContextChecked();
  Context::Scope context_scope(context);
  Local<v8::Array> array = v8::Array::New(isolate, static_cast<int>(ids.size()));
  for (size_t i = 0; i < ids.size(); i++) {
    array->Set(context, static_cast<uint32_t>(i), Number::New(isolate, ids[i])).Check();
  }
  Local<Value> argv[] = {array};
  // MakeCallback drains the microtask queue, so promise continuations of the
  // woken waiters run before the loop moves on.
  node::MakeCallback(isolate, context->Global(), fn, 1, argv, {0, 0});
}

void Cleanup(void* arg) {
  Service* service = static_cast<Service*>(arg);
  std::vector<std::unique_ptr<Shard>> shards;
  {
    std::lock_guard<std::mutex> lock(service->mutex);
    service->stopping = true;
    shards.swap(service->shards);
  }
  for (auto& shard : shards) {
    shard->Poke();
    if (shard->thread.joinable()) shard->thread.join();
  }
  service->callback.Reset();
  uv_close(reinterpret_cast<uv_handle_t*>(&service->async), [](uv_handle_t* h) {
    delete static_cast<Service*>(h->data);
  });
}

Service* GetService(const FunctionCallbackInfo<Value>& args) {
  return static_cast<Service*>(args.Data().As<External>()->Value());
}

// wait(buffer, offset, expected, timeoutMs) -> 0 woken | 1 not equal | 2 timed out
void Wait(const FunctionCallbackInfo<Value>& args) {
  WordRef word;
  int32_t expected;
  double timeout;
  if (!GetWord(args, 0, 4, 4, &word) || !GetInt32(args, 2, &expected) ||
      !GetNumber(args, 3, &timeout)) {
    return;
  }
  int r = FutexWait(word.ptr, static_cast<uint32_t>(expected), timeout);
  if (r == 0) return args.GetReturnValue().Set(0);
  if (r == EAGAIN) return args.GetReturnValue().Set(1);
  if (r == ETIMEDOUT) return args.GetReturnValue().Set(2);
  ThrowErrno(args.GetIsolate(), r, "futex");
}

// wake(buffer, offset, count) -> number of waiters woken
void Wake(const FunctionCallbackInfo<Value>& args) {
  WordRef word;
  int32_t count;
  if (!GetWord(args, 0, 4, 4, &word) || !GetInt32(args, 2, &count)) return;
  long r = FutexWake(word.ptr, count < 0 ? INT_MAX : count);
  if (r < 0) return ThrowErrno(args.GetIsolate(), errno, "futex");
  args.GetReturnValue().Set(static_cast<double>(r));
}

// waitAsync(buffer, offset, expected, id) -> 0 registered | 1 not equal
void WaitAsync(const FunctionCallbackInfo<Value>& args) {
  Service* service = GetService(args);
  WordRef word;
  int32_t expected;
  double id;
  if (!GetWord(args, 0, 4, 4, &word) || !GetInt32(args, 2, &expected) ||
      !GetNumber(args, 3, &id)) {
    return;
  }
  uint32_t value = static_cast<uint32_t>(expected);
  if (__atomic_load_n(word.ptr, __ATOMIC_SEQ_CST) != value) {
    return args.GetReturnValue().Set(1);
  }
  std::lock_guard<std::mutex> lock(service->mutex);
  Shard* target = nullptr;
  for (auto& shard : service->shards) {
    for (Slot& slot : shard->slots) {
      if (slot.addr == word.ptr && slot.expected == value) {
        slot.ids.push_back(id);
        service->registered++;
        service->UpdateRef();
        return args.GetReturnValue().Set(0);
      }
    }
    if (!target && shard->slots.size() < kSlotsPerShard) target = shard.get();
  }
  if (!target) {
    auto shard = std::make_unique<Shard>();
    shard->service = service;
    target = shard.get();
    service->shards.push_back(std::move(shard));
    target->thread = std::thread([target] { target->Run(); });
  }
  target->slots.push_back(
      Slot{word.ptr, value, {id}, word.buffer->GetBackingStore()});
  target->Poke();
  service->registered++;
  service->UpdateRef();
  args.GetReturnValue().Set(0);
}

// cancelAsync(id) -> true if it was still registered
void CancelAsync(const FunctionCallbackInfo<Value>& args) {
  Service* service = GetService(args);
  double id;
  if (!GetNumber(args, 0, &id)) return;
  std::lock_guard<std::mutex> lock(service->mutex);
  for (auto& shard : service->shards) {
    for (size_t i = 0; i < shard->slots.size(); i++) {
      Slot& slot = shard->slots[i];
      auto it = std::find(slot.ids.begin(), slot.ids.end(), id);
      if (it == slot.ids.end()) continue;
      slot.ids.erase(it);
      if (slot.ids.empty()) {
        shard->graveyard.push_back(std::move(slot.keep));
        shard->slots.erase(shard->slots.begin() + static_cast<long>(i));
        shard->Poke();
      }
      service->registered--;
      service->UpdateRef();
      return args.GetReturnValue().Set(true);
    }
  }
  args.GetReturnValue().Set(false);
}

void SetCallback(const FunctionCallbackInfo<Value>& args) {
  Service* service = GetService(args);
  if (!args[0]->IsFunction()) return ThrowTypeError(args.GetIsolate(), "expected a function");
  service->callback.Reset(args.GetIsolate(), args[0].As<Function>());
}

}  // namespace

void InitFutex(Local<Context> context, Local<Object> exports) {
  Isolate* isolate = context->GetIsolate();
  Service* service = new Service();
  service->isolate = isolate;
  uv_async_init(node::GetCurrentEventLoop(isolate), &service->async, OnAsync);
  service->async.data = service;
  uv_unref(reinterpret_cast<uv_handle_t*>(&service->async));
  node::AddEnvironmentCleanupHook(isolate, Cleanup, service);
  Local<External> data = External::New(isolate, service);
  SetMethod(context, exports, "futexWait", Wait);
  SetMethod(context, exports, "futexWake", Wake);
  SetMethod(context, exports, "futexWaitAsync", WaitAsync, data);
  SetMethod(context, exports, "futexCancelAsync", CancelAsync, data);
  SetMethod(context, exports, "futexSetCallback", SetCallback, data);
}

}  // namespace multiproc
