// A robust, fair-enough, cross-process mutex in 64 bytes of shared memory.
//
// Layout (offsets from the mutex start, which is 8-byte aligned):
//    0  u32 word     owner TID | FUTEX_WAITERS | FUTEX_OWNER_DIED (kernel ABI)
//    4  u32 handoff  TID of a waiter that starved and asked for the lock next
//   24  ptr prev     robust-list links, laid out as glibc lays out a
//   32  ptr next     pthread_mutex_t so both share the thread's one list
//
// Robustness: the kernel keeps, per thread, a list of held robust futexes
// (set_robust_list). glibc registers that list at thread start with
// futex_offset = -32. When a thread dies, even by SIGKILL, the kernel walks the
// list, sets FUTEX_OWNER_DIED on every word that still names the dead thread
// and wakes a waiter. We link our mutexes into glibc's list exactly as glibc
// links its own robust mutexes, so glibc's list operations and ours stay
// consistent.
//
// Fairness: plain futex locking lets a releasing thread barge back in. A
// waiter that has waited for over a millisecond writes its TID into
// `handoff`; from then on nobody but that waiter may take the free lock, and
// the others wait on the handoff word until it is cleared. A handoff holder
// that dies is detected with kill(tid, 0) and the reservation dropped.
//
// The decision logic lives in TryLock so that the blocking path (here) and
// the event-loop path (TypeScript, waiting through the futex service) run the
// same algorithm.
#include "mutex.h"

#include <linux/futex.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cmath>
#include <memory>
#include <vector>

#include "futex.h"
#include "util.h"

namespace multiproc {

using v8::BackingStore;
using v8::Context;
using v8::FunctionCallbackInfo;
using v8::Local;
using v8::Object;
using v8::Value;

namespace {

constexpr size_t kMutexSize = 64;
constexpr long kFutexOffset = -32;  // word is 32 bytes before the list entry
constexpr uint32_t kWaiters = FUTEX_WAITERS;
constexpr uint32_t kOwnerDied = FUTEX_OWNER_DIED;
constexpr uint32_t kTidMask = FUTEX_TID_MASK;

// Results shared with TypeScript (src/binding/native.ts).
enum Result : int {
  kWaitWord = 0,      // busy: wait on the word
  kAcquired = 1,
  kAcquiredOwnerDied = 2,
  kWaitHandoff = 3,   // reserved for a starving waiter: wait on handoff
  kDeadlock = -1,     // this thread already holds it
  kTimedOut = -2,
  kNotOwner = -3,
};

enum Flags : int {
  kWoken = 1,          // the caller has slept: take the lock with WAITERS set
  kStarving = 2,       // the caller has waited long: reserve the lock
  kCheckHandoff = 4,   // the reservation has stood long: is its owner alive?
  kNoSleep = 8,        // a try or a spin: do not mark the word as having sleepers
  kBlocking = 16,      // internal: the caller blocks this thread (mutexLock)
};

// A word this thread holds, with the memory it lives in: a held lock keeps
// its buffer alive even if JavaScript drops every reference, since the
// robust list (ours and the kernel's) points into it until the release.
struct Held {
  uint32_t* word;
  std::shared_ptr<BackingStore> keep;
};

struct ThreadState {
  bool robust = false;
  uint32_t tid = 0;
  struct robust_list_head* head = nullptr;
  // Released by the environment cleanup hook at the latest.
  std::vector<Held> held;
};

// A robust-list head of our own, for a thread whose libc registered none.
// The slot before it receives the "prev" link of the first entry, as
// glibc's struct pthread provides.
struct OwnHead {
  void* prev_slot;
  struct robust_list_head head;
};

// Heap-allocated and never freed: no destructor may run at thread exit,
// after V8 is gone.
thread_local ThreadState* current = nullptr;

ThreadState& Thread() {
  if (current != nullptr) return *current;
  current = new ThreadState();
  ThreadState& state = *current;
  state.tid = static_cast<uint32_t>(syscall(SYS_gettid));
  struct robust_list_head* head = nullptr;
  size_t len = 0;
  if (syscall(SYS_get_robust_list, 0, &head, &len) == 0 && head != nullptr) {
    state.head = head;
    state.robust = head->futex_offset == kFutexOffset;
  } else {
    OwnHead* own = new OwnHead();  // lives as long as the thread
    own->head.list.next = &own->head.list;
    own->head.futex_offset = kFutexOffset;
    own->head.list_op_pending = nullptr;
    if (syscall(SYS_set_robust_list, &own->head, sizeof(own->head)) == 0) {
      state.head = &own->head;
      state.robust = true;
    }
  }
  return state;
}

// Words held by every thread of the process (see HeldWordsMutex in mutex.h).
// A vector: a thread holds few mutexes, and the lock path must not allocate.
std::vector<uint32_t*>& HeldWords() {
  static auto* words = new std::vector<uint32_t*>();
  return *words;
}

void Unrecord(uint32_t* word) {
  std::lock_guard<HeldWordsLock> lock(HeldWordsMutex());
  std::vector<uint32_t*>& words = HeldWords();
  for (size_t i = words.size(); i-- > 0;) {
    if (words[i] == word) {
      words[i] = words.back();
      words.pop_back();
      return;
    }
  }
}

inline std::atomic<uint32_t>* Word(uint32_t* p) {
  return reinterpret_cast<std::atomic<uint32_t>*>(p);
}
inline uint32_t* Handoff(uint32_t* word) { return word + 1; }
inline struct robust_list* Entry(uint32_t* word) {
  return reinterpret_cast<struct robust_list*>(reinterpret_cast<char*>(word) - kFutexOffset);
}
inline uintptr_t* PrevOf(void* entry) {
  return reinterpret_cast<uintptr_t*>(static_cast<char*>(entry) - sizeof(void*));
}

// Same steps as glibc's ENQUEUE_MUTEX / DEQUEUE_MUTEX.
void Enqueue(ThreadState& t, uint32_t* word) {
  if (!t.robust) return;
  struct robust_list* entry = Entry(word);
  uintptr_t first = reinterpret_cast<uintptr_t>(t.head->list.next) & ~1ul;
  *PrevOf(reinterpret_cast<void*>(first)) = reinterpret_cast<uintptr_t>(entry);
  entry->next = t.head->list.next;
  *PrevOf(entry) = reinterpret_cast<uintptr_t>(&t.head->list);
  t.head->list.next = entry;
}

// Whether this thread can vouch for `link` as a neighbour of `word`'s entry:
// the list head, or the entry of another word it holds. Links stored in
// shared memory are not to be trusted: any process can write there (a
// primitive placed over a held mutex's bytes does), and writing through a
// bad link crashes the process or corrupts memory elsewhere.
bool Vouched(ThreadState& t, uint32_t* word, uintptr_t link) {
  if (link == reinterpret_cast<uintptr_t>(&t.head->list)) return true;
  for (const Held& h : t.held) {
    if (h.word != word && reinterpret_cast<uintptr_t>(Entry(h.word)) == link) return true;
  }
  return false;
}

// Relinks the robust list from scratch: the head, then the words this
// thread holds, newest first (as Enqueue leaves them), leaving `skip` out.
// Entries of glibc's own robust mutexes would be dropped; neither Node nor
// this library uses any.
void Rebuild(ThreadState& t, uint32_t* skip) {
  struct robust_list* prev = &t.head->list;
  for (size_t i = t.held.size(); i-- > 0;) {
    if (t.held[i].word == skip) continue;
    struct robust_list* entry = Entry(t.held[i].word);
    *PrevOf(entry) = reinterpret_cast<uintptr_t>(prev);
    prev->next = entry;
    prev = entry;
  }
  prev->next = &t.head->list;
}

// Caller has `word` still in t.held.
void Dequeue(ThreadState& t, uint32_t* word) {
  if (!t.robust) return;
  struct robust_list* entry = Entry(word);
  uintptr_t self = reinterpret_cast<uintptr_t>(entry);
  uintptr_t next = reinterpret_cast<uintptr_t>(entry->next) & ~1ul;
  uintptr_t prev = *PrevOf(entry) & ~1ul;
  // Unlink in place only when both neighbours are ours and point back.
  if (Vouched(t, word, next) && Vouched(t, word, prev)) {
    auto* prev_entry = reinterpret_cast<struct robust_list*>(prev);
    if ((reinterpret_cast<uintptr_t>(prev_entry->next) & ~1ul) == self &&
        *PrevOf(reinterpret_cast<void*>(next)) == self) {
      *PrevOf(reinterpret_cast<void*>(next)) = prev;
      prev_entry->next = reinterpret_cast<struct robust_list*>(next);
      return;
    }
  }
  Rebuild(t, word);
}

inline void SetPending(ThreadState& t, uint32_t* word) {
  if (t.robust) {
    t.head->list_op_pending = word ? Entry(word) : nullptr;
    std::atomic_signal_fence(std::memory_order_seq_cst);
  }
}

bool HeldByThisThread(ThreadState& t, uint32_t* word) {
  for (const Held& h : t.held) {
    if (h.word == word) return true;
  }
  return false;
}

int TryLock(ThreadState& t, const WordRef& ref, int flags) {
  uint32_t* word = ref.ptr;
  std::atomic<uint32_t>* w = Word(word);
  std::atomic<uint32_t>* handoff = Word(Handoff(word));
  for (int attempt = 0; attempt < 64; attempt++) {
    uint32_t h = handoff->load();
    if (h != 0 && h != t.tid) {
      if ((flags & kCheckHandoff) && kill(static_cast<pid_t>(h), 0) != 0 &&
          errno == ESRCH) {
        if (handoff->compare_exchange_strong(h, 0)) FutexWake(Handoff(word), INT_MAX);
        continue;
      }
      return kWaitHandoff;
    }
    uint32_t v = w->load();
    if ((v & kTidMask) == 0) {
      uint32_t next = t.tid | (v & kWaiters) | ((flags & kWoken) ? kWaiters : 0);
      bool taken;
      {
        // Take and record under one lock: no mapping can be replaced
        // between the two (see HeldWordsMutex).
        std::lock_guard<HeldWordsLock> lock(HeldWordsMutex());
        SetPending(t, word);
        taken = w->compare_exchange_strong(v, next);
        if (taken) {
          Enqueue(t, word);
          HeldWords().push_back(word);
        }
        SetPending(t, nullptr);
      }
      if (taken) {
        t.held.push_back(Held{word, ref.buffer->GetBackingStore()});
        if (h == t.tid) {
          handoff->store(0);
          FutexWake(Handoff(word), INT_MAX);
        }
        return (v & kOwnerDied) ? kAcquiredOwnerDied : kAcquired;
      }
      continue;
    }
    if ((v & kTidMask) == t.tid) {
      if (HeldByThisThread(t, word)) return kDeadlock;
      // Held by this thread through another mapping of the same memory (a
      // dead owner's TID would have been replaced by OWNER_DIED). Blocking
      // would never end; an async wait is woken by that release.
      if (flags & kBlocking) return kDeadlock;
    }
    // Set WAITERS only for a caller about to sleep: a spinner that catches
    // the release must not cost the holder a FUTEX_WAKE.
    if (flags & kNoSleep) return kWaitWord;
    if (!(v & kWaiters) && !w->compare_exchange_strong(v, v | kWaiters)) continue;
    if (flags & kStarving) {
      uint32_t zero = 0;
      handoff->compare_exchange_strong(zero, t.tid);
    }
    return kWaitWord;
  }
  return kWaitWord;
}

double NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// mutexTryLock(buffer, offset, flags) -> Result
void TryLockJs(const FunctionCallbackInfo<Value>& args) {
  WordRef ref;
  int32_t flags;
  if (!GetWord(args, 0, kMutexSize, 8, &ref) || !GetInt32(args, 2, &flags)) return;
  args.GetReturnValue().Set(TryLock(Thread(), ref, flags & ~kBlocking));
}

// mutexLock(buffer, offset, timeoutMs, spins) -> Result (blocks this thread)
void LockJs(const FunctionCallbackInfo<Value>& args) {
  WordRef ref;
  double timeout;
  int32_t spins;
  if (!GetWord(args, 0, kMutexSize, 8, &ref) || !GetNumber(args, 2, &timeout) ||
      !GetInt32(args, 3, &spins)) {
    return;
  }
  ThreadState& t = Thread();
  uint32_t* word = ref.ptr;
  int r = TryLock(t, ref, kNoSleep | kBlocking);
  // Spin briefly: on a handoff between two running threads the lock is often
  // free again within a microsecond, far cheaper than a sleep and a wake.
  // Kept short (about a microsecond): a spin that misses costs its whole window.
  for (int i = 0; r == kWaitWord && i < spins; i++) {
    if ((Word(word)->load() & kTidMask) == 0) r = TryLock(t, ref, kNoSleep | kBlocking);
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }
  if (r != kWaitWord && r != kWaitHandoff) return args.GetReturnValue().Set(r);
  double start = NowMs();
  double deadline = timeout < 0 ? -1 : start + timeout;
  int flags = kBlocking;
  if (r == kWaitWord) r = TryLock(t, ref, kBlocking);  // now mark the word: we may sleep
  while (r == kWaitWord || r == kWaitHandoff) {
    double left = -1;
    if (deadline >= 0) {
      left = deadline - NowMs();
      if (left <= 0) break;
    }
    int e;
    if (r == kWaitHandoff) {
      uint32_t h = Word(Handoff(word))->load();
      double slice = left < 0 ? 50 : std::min(left, 50.0);
      e = h == 0 ? 0 : FutexWait(Handoff(word), h, slice);
      flags |= kCheckHandoff;
    } else {
      // Sleep only on a value that carries WAITERS: the holder's unlock then
      // wakes us. Any other value means the word moved on; just retry.
      uint32_t v = Word(word)->load();
      e = ((v & kTidMask) != 0 && (v & kWaiters)) ? FutexWait(word, v, left) : 0;
      flags |= kWoken;
    }
    if (e != 0 && e != EAGAIN && e != ETIMEDOUT) return ThrowErrno(args.GetIsolate(), e, "futex");
    if (NowMs() - start > 1.0) flags |= kStarving;
    r = TryLock(t, ref, flags);
  }
  if (r == kWaitWord || r == kWaitHandoff) {
    // We may have consumed a wake meant for the next owner: pass it on.
    if (Word(word)->load() & kWaiters) FutexWake(word, 1);
    uint32_t tid = t.tid;
    Word(Handoff(word))->compare_exchange_strong(tid, 0);
    r = kTimedOut;
  }
  args.GetReturnValue().Set(r);
}

// mutexUnlock(buffer, offset) -> 0 | kNotOwner
void UnlockJs(const FunctionCallbackInfo<Value>& args) {
  WordRef ref;
  if (!GetWord(args, 0, kMutexSize, 8, &ref)) return;
  ThreadState& t = Thread();
  uint32_t* word = ref.ptr;
  std::atomic<uint32_t>* w = Word(word);
  size_t i = t.held.size();
  while (i > 0 && t.held[i - 1].word != word) i--;
  if (i == 0 || (w->load() & kTidMask) != t.tid) return args.GetReturnValue().Set(kNotOwner);
  SetPending(t, word);
  Dequeue(t, word);
  uint32_t old = w->exchange(0);
  SetPending(t, nullptr);
  Unrecord(word);
  if (old & kWaiters) {
    // With a reservation standing, every waiter must look: only the
    // reserved one may proceed and the others go to wait on handoff.
    FutexWake(word, Word(Handoff(word))->load() != 0 ? INT_MAX : 1);
  }
  t.held.erase(t.held.begin() + static_cast<long>(i - 1));
  args.GetReturnValue().Set(0);
}

// mutexGiveUp(buffer, offset): a waiter that stops waiting (timeout, abort)
// drops its reservation and passes on a wake it may have consumed.
void GiveUpJs(const FunctionCallbackInfo<Value>& args) {
  WordRef ref;
  if (!GetWord(args, 0, kMutexSize, 8, &ref)) return;
  ThreadState& t = Thread();
  uint32_t tid = t.tid;
  if (Word(Handoff(ref.ptr))->compare_exchange_strong(tid, 0)) {
    FutexWake(Handoff(ref.ptr), INT_MAX);
  }
  // Unconditionally: the unlock whose wake this waiter took cleared WAITERS
  // with the owner, so the word no longer says that others sleep. A waiter
  // woken for nothing tries the lock and sets WAITERS again before it sleeps.
  FutexWake(ref.ptr, 1);
}

// mutexHeldIn(buffer) -> number of mutexes held inside buffer by any thread
// of this process
void HeldInJs(const FunctionCallbackInfo<Value>& args) {
  if (!args[0]->IsSharedArrayBuffer()) return ThrowTypeError(args.GetIsolate(), "expected a SharedArrayBuffer");
  auto sab = args[0].As<v8::SharedArrayBuffer>();
  std::lock_guard<HeldWordsLock> lock(HeldWordsMutex());
  args.GetReturnValue().Set(HeldWordsIn(reinterpret_cast<uintptr_t>(sab->Data()), sab->ByteLength()));
}

void InfoJs(const FunctionCallbackInfo<Value>& args) {
  ThreadState& t = Thread();
  Local<Context> context = args.GetIsolate()->GetCurrentContext();
  Local<Object> info = Object::New(args.GetIsolate());
  SetConstant(context, info, "tid", t.tid);
  info->Set(context, v8::String::NewFromUtf8Literal(args.GetIsolate(), "robust"),
            v8::Boolean::New(args.GetIsolate(), t.robust)).Check();
  args.GetReturnValue().Set(info);
}

// Environment teardown (a worker ending, terminate()): release what this
// thread still holds the way the kernel would at thread death, marking each
// word OWNER_DIED, while the memory is still certain to be mapped.
void ReleaseHeldAtExit(void* cookie) {
  delete static_cast<char*>(cookie);
  if (current == nullptr) return;
  ThreadState& t = *current;
  for (size_t i = t.held.size(); i-- > 0;) {
    uint32_t* word = t.held[i].word;
    SetPending(t, word);
    Dequeue(t, word);
    uint32_t old = Word(word)->load();
    uint32_t next;
    do {
      if ((old & kTidMask) != t.tid) break;
      next = (old & kWaiters) | kOwnerDied;
    } while (!Word(word)->compare_exchange_weak(old, next));
    SetPending(t, nullptr);
    Unrecord(word);
    if (old & kWaiters) FutexWake(word, 1);
  }
  t.held.clear();
}

}  // namespace

HeldWordsLock& HeldWordsMutex() {
  static auto* lock = new HeldWordsLock();  // never destroyed: threads may outlive statics
  return *lock;
}

int HeldWordsIn(uintptr_t begin, size_t length) {
  int n = 0;
  for (uint32_t* word : HeldWords()) {
    uintptr_t p = reinterpret_cast<uintptr_t>(word);
    if (p >= begin && p - begin < length) n++;
  }
  return n;
}

void InitMutex(Local<Context> context, Local<Object> exports) {
  // A fresh argument per init: Node aborts on a second registration of the
  // same (callback, argument) pair in an environment, and init runs again
  // whenever the addon is loaded again (a module registry reset, another
  // path to the same file). A second run of the hook finds nothing held.
  node::AddEnvironmentCleanupHook(context->GetIsolate(), ReleaseHeldAtExit, new char);
  SetMethod(context, exports, "mutexTryLock", TryLockJs);
  SetMethod(context, exports, "mutexLock", LockJs);
  SetMethod(context, exports, "mutexUnlock", UnlockJs);
  SetMethod(context, exports, "mutexGiveUp", GiveUpJs);
  SetMethod(context, exports, "mutexHeldIn", HeldInJs);
  SetMethod(context, exports, "threadInfo", InfoJs);
  SetConstant(context, exports, "MUTEX_SIZE", kMutexSize);
}

}  // namespace multiproc
