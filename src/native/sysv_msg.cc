// System V message queues.
//
// Every call passes IPC_NOWAIT. System V queues have no descriptor to poll,
// so TypeScript waits on doorbell futex words in a small shared segment that
// belongs to the queue, and calls back in here.
//
// Priorities are not native to System V. They are folded into the kernel's
// message type so that, for one message type, a higher priority is a lower
// mtype:
//
//   mtype = type * 32768 + (32767 - priority)      priority 0..32767
//
// msgrcv's own rules then do most of the work:
// - selector < 0 (lowest type <= |selector|, highest priority within it):
//   one msgrcv(-(|selector| * 32768 + 32767)), exact;
// - selector > 0: msgrcv(selector * 32768 + (32767 - p)) for each priority p
//   in use, highest first. Senders record the priorities they use in a bitmap
//   in the shared segment (priority 0 is always probed);
// - selector 0: with a single priority in use, msgrcv(0) (arrival order).
//   With several, the queue is scanned with MSG_COPY (a copy of the message
//   at a position, left in place) for the oldest message of the highest
//   priority, which is then taken by its exact mtype: no message of that
//   mtype is older than it. Kernels without MSG_COPY (ENOSYS, built without
//   CONFIG_CHECKPOINT_RESTORE) fall back to arrival order.
#include "sysv_msg.h"

#include <node_buffer.h>
#include <sys/ipc.h>
#include <sys/msg.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "util.h"

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

namespace multiproc {

using v8::ArrayBufferView;
using v8::Context;
using v8::Float64Array;
using v8::FunctionCallbackInfo;
using v8::Isolate;
using v8::Local;
using v8::Object;
using v8::Value;

namespace {

constexpr long kBands = 32768;
constexpr size_t kSummaryWords = 32;
constexpr size_t kBitmapWords = 1024;
constexpr size_t kMaxBuffer = size_t{1} << 26;

// struct msgbuf { long mtype; char mtext[]; }, kept per thread and grown on E2BIG.
thread_local std::vector<long> scratch;

char* Text() { return reinterpret_cast<char*>(scratch.data() + 1); }
size_t Room() { return scratch.empty() ? 0 : (scratch.size() - 1) * sizeof(long); }
void Reserve(size_t bytes) {
  size_t words = 1 + (bytes + sizeof(long) - 1) / sizeof(long);
  if (scratch.size() < words) scratch.resize(words);
}

double* GetOutF64(const FunctionCallbackInfo<Value>& args, int index, size_t n) {
  if (!args[index]->IsFloat64Array()) {
    ThrowTypeError(args.GetIsolate(), "expected a Float64Array");
    return nullptr;
  }
  Local<Float64Array> out = args[index].As<Float64Array>();
  if (out->Length() < n) {
    ThrowRangeError(args.GetIsolate(), "out array too short");
    return nullptr;
  }
  return reinterpret_cast<double*>(static_cast<char*>(out->Buffer()->Data()) + out->ByteOffset());
}

// Receives the message chosen by msgtyp (msgrcv's rules). Returns its length,
// or -errno (-ENOMSG: none).
ssize_t Take(int id, long msgtyp, int flags = 0) {
  for (;;) {
    ssize_t n = msgrcv(id, scratch.data(), Room(), msgtyp, flags | IPC_NOWAIT);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    // A message larger than our buffer (a foreign sender, or msgmax raised
    // since): grow and retry rather than leave it blocking the queue.
    if (errno == E2BIG && Room() < kMaxBuffer) {
      Reserve(Room() * 2);
      continue;
    }
    return -errno;
  }
}

// The priority bitmap: 32 summary words (bit w: bitmap word w is nonzero),
// then 1024 bitmap words (bit p: priority p has been used).
struct Bitmap {
  const uint32_t* summary;
  const uint32_t* words;
};

inline uint32_t Load(const uint32_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }

// Calls fn(priority) for every priority in use, highest first, until it returns true.
template <typename Fn>
bool ForEachPriority(const Bitmap& bm, Fn fn) {
  bool zero = false;
  for (int sw = kSummaryWords - 1; sw >= 0; sw--) {
    uint32_t s = Load(bm.summary + sw);
    while (s != 0) {
      int bit = 31 - __builtin_clz(s);
      s &= ~(1u << bit);
      int w = sw * 32 + bit;
      uint32_t word = Load(bm.words + w);
      while (word != 0) {
        int b = 31 - __builtin_clz(word);
        word &= ~(1u << b);
        int p = w * 32 + b;
        if (p == 0) zero = true;
        if (fn(p)) return true;
      }
    }
  }
  return zero ? false : fn(0);
}

bool SeveralPriorities(const Bitmap& bm) {
  int seen = 0;
  ForEachPriority(bm, [&](int) { return ++seen > 1; });
  return seen > 1;
}

// The mtype of the oldest message of the highest priority, 0 when the queue
// is empty, -1 when MSG_COPY is unavailable, -errno on other errors.
long ScanBest(int id) {
  long best = 0;
  long best_band = kBands;
  for (long i = 0;; i++) {
    ssize_t n = Take(id, i, MSG_COPY);
    if (n == -ENOMSG) break;
    if (n == -ENOSYS || n == -EINVAL) return -1;
    if (n < 0) return n;
    long mtype = scratch[0];
    long band = mtype % kBands;
    if (band < best_band) {
      best_band = band;
      best = mtype;
      if (band == 0) break;
    }
  }
  return best;
}

// msgGet(key, flags) -> id; flags: IPC_CREAT | IPC_EXCL | mode bits.
void Get(const FunctionCallbackInfo<Value>& args) {
  int32_t key, flags;
  if (!GetInt32(args, 0, &key) || !GetInt32(args, 1, &flags)) return;
  int id = msgget(static_cast<key_t>(key), flags & (IPC_CREAT | IPC_EXCL | 0777));
  if (id < 0) return ThrowErrno(args.GetIsolate(), errno, "msgget");
  args.GetReturnValue().Set(id);
}

void Remove(const FunctionCallbackInfo<Value>& args) {
  int32_t id;
  if (!GetInt32(args, 0, &id)) return;
  if (msgctl(id, IPC_RMID, nullptr) != 0) ThrowErrno(args.GetIsolate(), errno, "msgctl");
}

// msgStat(id, out): out = [key, mode, uid, qnum, cbytes, qbytes, lspid, lrpid, stime, rtime, ctime, cuid]
void Stat(const FunctionCallbackInfo<Value>& args) {
  int32_t id;
  if (!GetInt32(args, 0, &id)) return;
  double* out = GetOutF64(args, 1, 12);
  if (out == nullptr) return;
  struct msqid_ds ds = {};
  if (msgctl(id, IPC_STAT, &ds) != 0) return ThrowErrno(args.GetIsolate(), errno, "msgctl");
  out[0] = static_cast<double>(static_cast<int32_t>(ds.msg_perm.__key));
  out[1] = static_cast<double>(ds.msg_perm.mode & 0777);
  out[2] = static_cast<double>(ds.msg_perm.uid);
  out[3] = static_cast<double>(ds.msg_qnum);
  out[4] = static_cast<double>(ds.__msg_cbytes);
  out[5] = static_cast<double>(ds.msg_qbytes);
  out[6] = static_cast<double>(ds.msg_lspid);
  out[7] = static_cast<double>(ds.msg_lrpid);
  out[8] = static_cast<double>(ds.msg_stime);
  out[9] = static_cast<double>(ds.msg_rtime);
  out[10] = static_cast<double>(ds.msg_ctime);
  out[11] = static_cast<double>(ds.msg_perm.cuid);
}

// msgSetQbytes(id, qbytes): IPC_SET of msg_qbytes (raising it above msgmnb needs CAP_SYS_RESOURCE).
void SetQbytes(const FunctionCallbackInfo<Value>& args) {
  int32_t id;
  double qbytes;
  if (!GetInt32(args, 0, &id) || !GetNumber(args, 1, &qbytes)) return;
  struct msqid_ds ds = {};
  if (msgctl(id, IPC_STAT, &ds) != 0) return ThrowErrno(args.GetIsolate(), errno, "msgctl");
  ds.msg_qbytes = static_cast<msglen_t>(qbytes);
  if (msgctl(id, IPC_SET, &ds) != 0) ThrowErrno(args.GetIsolate(), errno, "msgctl");
}

// msgSend(id, type, priority, payload) -> true | false (full)
void Send(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  int32_t id, type, prio;
  if (!GetInt32(args, 0, &id) || !GetInt32(args, 1, &type) || !GetInt32(args, 2, &prio)) return;
  if (type <= 0 || prio < 0 || prio >= kBands) return ThrowRangeError(isolate, "type or priority out of range");
  if (!args[3]->IsArrayBufferView()) return ThrowTypeError(isolate, "payload must be a Uint8Array");
  Local<ArrayBufferView> view = args[3].As<ArrayBufferView>();
  size_t len = view->ByteLength();
  Reserve(len);
  scratch[0] = static_cast<long>(type) * kBands + (kBands - 1 - prio);
  if (len > 0) view->CopyContents(Text(), len);
  for (;;) {
    if (msgsnd(id, scratch.data(), len, IPC_NOWAIT) == 0) return args.GetReturnValue().Set(true);
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return args.GetReturnValue().Set(false);
    return ThrowErrno(isolate, errno, "msgsnd");
  }
}

// msgReceive(id, selector, bufsize, bitmapBuffer, bitmapOffset, out) -> Buffer | null (none)
// out = [type (0: mtype does not follow the encoding), priority, mtype]
void Receive(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  int32_t id, selector;
  uint32_t bufsize;
  WordRef ref;
  if (!GetInt32(args, 0, &id) || !GetInt32(args, 1, &selector) || !GetUint32(args, 2, &bufsize) ||
      !GetWord(args, 3, (kSummaryWords + kBitmapWords) * 4, 4, &ref)) {
    return;
  }
  double* out = GetOutF64(args, 5, 3);
  if (out == nullptr) return;
  // Larger messages are received by growing the buffer on E2BIG (up to
  // kMaxBuffer): never allocate whatever size was asked up front.
  Reserve(std::min<size_t>(std::max<size_t>(bufsize, 8192), kMaxBuffer));
  Bitmap bm = {ref.ptr, ref.ptr + kSummaryWords};
  ssize_t n = -ENOMSG;
  if (selector < 0) {
    n = Take(id, -(static_cast<long>(-static_cast<int64_t>(selector)) * kBands + kBands - 1));
  } else if (selector > 0) {
    ForEachPriority(bm, [&](int p) {
      n = Take(id, static_cast<long>(selector) * kBands + (kBands - 1 - p));
      return n != -ENOMSG;
    });
  } else if (!SeveralPriorities(bm)) {
    n = Take(id, 0);
  } else {
    // Another receiver may take the chosen message between the scan and
    // the take: scan again a few times, then settle for arrival order.
    for (int attempt = 0; attempt < 4; attempt++) {
      long best = ScanBest(id);
      if (best < -1) {
        n = best;
        break;
      }
      if (best == 0) break;
      n = best == -1 ? Take(id, 0) : Take(id, best);
      if (n != -ENOMSG || best == -1) break;
    }
    if (n == -ENOMSG) n = Take(id, 0);
  }
  if (n == -ENOMSG) return args.GetReturnValue().SetNull();
  if (n < 0) return ThrowErrno(isolate, static_cast<int>(-n), "msgrcv");
  long mtype = scratch[0];
  long type = mtype / kBands;
  out[0] = (type >= 1 && type <= 0x7fffffff) ? static_cast<double>(type) : 0;
  out[1] = static_cast<double>(kBands - 1 - mtype % kBands);
  out[2] = static_cast<double>(mtype);
  Local<Object> buffer;
  if (!node::Buffer::Copy(isolate, Text(), static_cast<size_t>(n)).ToLocal(&buffer)) return;
  args.GetReturnValue().Set(buffer);
}

}  // namespace

void InitSysvMsg(Local<Context> context, Local<Object> exports) {
  SetMethod(context, exports, "msgGet", Get);
  SetMethod(context, exports, "msgRemove", Remove);
  SetMethod(context, exports, "msgStat", Stat);
  SetMethod(context, exports, "msgSetQbytes", SetQbytes);
  SetMethod(context, exports, "msgSend", Send);
  SetMethod(context, exports, "msgReceive", Receive);
  SetConstant(context, exports, "MSG_PRIORITIES", kBands);
  SetConstant(context, exports, "MSG_BITMAP_BYTES", (kSummaryWords + kBitmapWords) * 4);
  SetConstant(context, exports, "IPC_CREAT", IPC_CREAT);
  SetConstant(context, exports, "IPC_EXCL", IPC_EXCL);
}

}  // namespace multiproc
