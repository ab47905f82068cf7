// The kernel's netlink process connector, read on a dedicated thread.
//
// new ProcessConnector({ socketBufferBytes, maxArgsBytes, procRoot? }, onBatch) subscribes (socket, bind to
// CN_IDX_PROC, PROC_CN_MCAST_LISTEN) synchronously, so a missing privilege or a kernel without the connector
// throws at once with errno's code. The reader thread then drains the socket, decodes exec/fork/exit/id
// records, snapshots /proc/<pid> of every exec'd process before it can exit (procfs.cc) and hands batches to
// JavaScript through a thread-safe function. stop() unsubscribes, wakes the thread through an eventfd and
// joins it; it is idempotent and also runs from an environment cleanup hook, so worker threads and process
// exit are safe.
//
// Loss is counted, never hidden: ENOBUFS from recv() (the receive queue overflowed: an overrun) and gaps in
// the connector's sequence numbers, which the kernel counts per CPU (proc_event.cpu says which).
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "parts.h"
#include "procfs.h"
#include "procfs_js.h"

namespace execsentry {

namespace {

// Record kinds as JavaScript sees them (src/native.ts ConnectorRecordKind mirrors these numbers).
enum RecordKind : uint32_t {
  kExec = 1,
  kFork = 2,
  kExit = 3,
  kUidChange = 4,
  kGidChange = 5,
  kOverrun = 6,
  kSubscribed = 7,  // the kernel's answer to our PROC_CN_MCAST_LISTEN (error in `code`)
  kReadError = 8,   // recv() failed for good; the reader thread has ended
};

constexpr size_t kMaxBatchRecords = 256;
// Records wait at most this long for company before going to JavaScript: fewer, larger batches cost the
// JS thread less per event. The /proc snapshots are not delayed by it.
constexpr uint64_t kBatchWindowMs = 5;
constexpr int kReaderNice = -10;
// Batches handed to JavaScript and not yet processed. Beyond it the thread stops reading, so a stalled
// JavaScript thread costs the kernel's bounded socket buffer (and counted overruns), not unbounded memory.
constexpr int kMaxPendingBatches = 64;

struct Record {
  explicit Record(RecordKind recordKind) : kind(recordKind) {}
  RecordKind kind;
  uint32_t cpu = 0;
  uint64_t timeNs = 0;      // CLOCK_MONOTONIC, as the kernel stamped it
  int32_t pid = 0;          // process (thread group) concerned; the child for fork
  int32_t parentPid = 0;    // fork: the forking process; exit: the parent
  uint32_t first = 0;       // uid/gid change: real id; exit: exit code; subscribed/read error: errno
  uint32_t second = 0;      // uid/gid change: effective id; exit: signal
  std::optional<Snapshot> snapshot;
};

struct Batch {
  std::vector<Record> records;
};

// Counters shared by the reader thread (writer) and JavaScript (stats()); outlives both through shared_ptr.
struct Shared {
  std::atomic<uint64_t> received{0}, execs{0}, forks{0}, exits{0}, threadEvents{0}, idChanges{0};
  std::atomic<uint64_t> overruns{0}, seqGaps{0}, partial{0}, pidReused{0}, superseded{0};
  std::atomic<uint64_t> batches{0}, backpressureWaits{0};
  std::atomic<int> pendingBatches{0};
  std::atomic<uint64_t> socketBufferBytes{0};
};

using SharedPtr = std::shared_ptr<Shared>;

void DeliverBatch(Napi::Env env, Napi::Function callback, SharedPtr* shared, Batch* batch);
using BatchFunction = Napi::TypedThreadSafeFunction<SharedPtr, Batch, DeliverBatch>;

[[noreturn]] void ThrowErrno(Napi::Env env, const char* syscall, int error) {
  Napi::Error failure = Napi::Error::New(env, std::string(syscall) + ": " + std::strerror(error));
  const char* name = error == EPERM ? "EPERM" : error == EACCES ? "EACCES" : error == EPROTONOSUPPORT ? "EPROTONOSUPPORT"
                     : error == EAFNOSUPPORT ? "EAFNOSUPPORT" : error == ENOENT ? "ENOENT" : "EOTHER";
  failure.Set("code", Napi::String::New(env, name));
  failure.Set("errno", Napi::Number::New(env, error));
  failure.Set("syscall", Napi::String::New(env, syscall));
  throw failure;
}

uint64_t ClockNs(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

class ProcessConnector : public Napi::ObjectWrap<ProcessConnector> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ProcessConnector",
                       {InstanceMethod<&ProcessConnector::Stop>("stop"), InstanceMethod<&ProcessConnector::Stats>("stats")});
  }

  explicit ProcessConnector(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ProcessConnector>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
      throw Napi::TypeError::New(env, "new ProcessConnector({ socketBufferBytes, maxArgsBytes, procRoot? }, onBatch)");
    }
    Napi::Object options = info[0].As<Napi::Object>();
    const auto number = [&](const char* key, double fallback) {
      Napi::Value value = options.Get(key);
      return value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : fallback;
    };
    const double bufferBytes = number("socketBufferBytes", 4 * 1024 * 1024);
    const double maxArgs = number("maxArgsBytes", 64 * 1024);
    maxArgsBytes_ = maxArgs > 0 ? static_cast<size_t>(maxArgs) : 0;
    if (options.Get("procRoot").IsString()) procRoot_ = options.Get("procRoot").As<Napi::String>().Utf8Value();

    Subscribe(env, bufferBytes > 0 ? static_cast<int>(std::min(bufferBytes, 1024.0 * 1024 * 1024)) : 0);
    shared_ = std::make_shared<Shared>();
    shared_->socketBufferBytes = socketBufferBytes_;
    batches_ = BatchFunction::New(env, info[1].As<Napi::Function>(), "execsentry.processConnector", 0, 1,
                                  new SharedPtr(shared_), [](Napi::Env, void*, SharedPtr* context) { delete context; });
    napi_add_env_cleanup_hook(env, &ProcessConnector::OnEnvCleanup, this);
    cleanupHookEnv_ = env;
    reader_ = std::thread([this] { Run(); });
  }

  ~ProcessConnector() override {
    if (cleanupHookEnv_ != nullptr) napi_remove_env_cleanup_hook(cleanupHookEnv_, &ProcessConnector::OnEnvCleanup, this);
    Shutdown();
  }

 private:
  void Subscribe(Napi::Env env, int bufferBytes) {
    socket_ = socket(PF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_CONNECTOR);
    if (socket_ < 0) ThrowErrno(env, "socket(NETLINK_CONNECTOR)", errno);
    // SO_RCVBUFFORCE passes net.core.rmem_max (needs CAP_NET_ADMIN, which subscribing needs anyway);
    // SO_RCVBUF is the fallback, capped by rmem_max. What we got is reported in stats().
    if (bufferBytes > 0 && setsockopt(socket_, SOL_SOCKET, SO_RCVBUFFORCE, &bufferBytes, sizeof bufferBytes) != 0) {
      setsockopt(socket_, SOL_SOCKET, SO_RCVBUF, &bufferBytes, sizeof bufferBytes);
    }
    int actual = 0;
    socklen_t length = sizeof actual;
    if (getsockopt(socket_, SOL_SOCKET, SO_RCVBUF, &actual, &length) == 0) socketBufferBytes_ = static_cast<uint64_t>(actual);

    struct sockaddr_nl address;
    std::memset(&address, 0, sizeof address);
    address.nl_family = AF_NETLINK;
    address.nl_groups = CN_IDX_PROC;
    address.nl_pid = 0;  // the kernel picks a unique port id (several connectors may live in one process)
    if (bind(socket_, reinterpret_cast<struct sockaddr*>(&address), sizeof address) != 0) {
      int error = errno;
      CloseFds();
      ThrowErrno(env, "bind(CN_IDX_PROC)", error);
    }
    wakeFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wakeFd_ < 0) {
      int error = errno;
      CloseFds();
      ThrowErrno(env, "eventfd", error);
    }
    if (!SendMulticastOp(PROC_CN_MCAST_LISTEN)) {
      int error = errno;
      CloseFds();
      ThrowErrno(env, "send(PROC_CN_MCAST_LISTEN)", error);
    }
  }

  bool SendMulticastOp(enum proc_cn_mcast_op op) {
    alignas(struct nlmsghdr) char buffer[NLMSG_SPACE(sizeof(struct cn_msg) + sizeof(enum proc_cn_mcast_op))];
    std::memset(buffer, 0, sizeof buffer);
    auto* header = reinterpret_cast<struct nlmsghdr*>(buffer);
    header->nlmsg_len = NLMSG_LENGTH(sizeof(struct cn_msg) + sizeof op);
    header->nlmsg_type = NLMSG_DONE;
    header->nlmsg_pid = 0;
    auto* message = static_cast<struct cn_msg*>(NLMSG_DATA(header));
    message->id.idx = CN_IDX_PROC;
    message->id.val = CN_VAL_PROC;
    message->ack = 0;
    message->len = sizeof op;
    std::memcpy(message->data, &op, sizeof op);
    for (;;) {
      if (send(socket_, buffer, header->nlmsg_len, 0) >= 0) return true;
      if (errno != EINTR) return false;
    }
  }

  static void OnEnvCleanup(void* self) {
    auto* connector = static_cast<ProcessConnector*>(self);
    connector->cleanupHookEnv_ = nullptr;  // the hook is being run; the destructor must not remove it
    connector->Shutdown();
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  // Idempotent: wake and join the reader, unsubscribe, close, release the thread-safe function.
  void Shutdown() {
    std::lock_guard<std::mutex> lock(shutdownMutex_);
    if (stopped_) return;
    stopped_ = true;
    if (wakeFd_ >= 0) {
      uint64_t one = 1;
      while (write(wakeFd_, &one, sizeof one) < 0 && errno == EINTR) {
      }
    }
    if (reader_.joinable()) reader_.join();
    if (socket_ >= 0) SendMulticastOp(PROC_CN_MCAST_IGNORE);
    CloseFds();
    batches_.Release();
  }

  void CloseFds() {
    if (socket_ >= 0) close(socket_);
    if (wakeFd_ >= 0) close(wakeFd_);
    socket_ = wakeFd_ = -1;
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object out = Napi::Object::New(env);
    const auto put = [&](const char* key, uint64_t value) { out.Set(key, Napi::Number::New(env, static_cast<double>(value))); };
    const Shared& s = *shared_;
    put("received", s.received);
    put("execs", s.execs);
    put("forks", s.forks);
    put("exits", s.exits);
    put("threadEvents", s.threadEvents);
    put("idChanges", s.idChanges);
    put("overruns", s.overruns);
    put("seqGaps", s.seqGaps);
    put("partial", s.partial);
    put("pidReused", s.pidReused);
    put("superseded", s.superseded);
    put("batches", s.batches);
    put("backpressureWaits", s.backpressureWaits);
    put("socketBufferBytes", s.socketBufferBytes);
    return out;
  }

  // --- reader thread ---

  void Run() {
    // A short-lived process must still be there when its exec record is read: run ahead of ordinary
    // work (the nice value of this thread only; needs CAP_SYS_NICE, silently skipped without it).
    setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), kReaderNice);
    std::vector<char> buffer(256 * 1024);
    auto batch = std::make_unique<Batch>();
    size_t snapshotted = 0;          // records of `batch` already snapshotted
    uint64_t batchStartedNs = 0;     // when its first record was read
    bool failed = false;
    while (!failed) {
      if (shared_->pendingBatches.load() >= kMaxPendingBatches) {
        shared_->backpressureWaits++;
        struct pollfd wake = {wakeFd_, POLLIN, 0};
        if (poll(&wake, 1, 2) > 0) break;
        continue;
      }
      int timeoutMs = -1;
      if (!batch->records.empty()) {
        const uint64_t waitedMs = (ClockNs(CLOCK_MONOTONIC) - batchStartedNs) / 1000000;
        timeoutMs = waitedMs >= kBatchWindowMs ? 0 : static_cast<int>(kBatchWindowMs - waitedMs);
      }
      struct pollfd fds[2] = {{socket_, POLLIN, 0}, {wakeFd_, POLLIN, 0}};
      int ready = poll(fds, 2, timeoutMs);
      if (ready < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (fds[1].revents != 0) break;
      // Drain what is queued before snapshotting: a later record in the same batch can show that an
      // earlier exec's /proc view would belong to someone else.
      while (fds[0].revents != 0 && batch->records.size() < kMaxBatchRecords) {
        ssize_t n = recv(socket_, buffer.data(), buffer.size(), MSG_DONTWAIT);
        if (n < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK) break;
          if (errno == ENOBUFS) {
            shared_->overruns++;
            Record overrun{kOverrun};
            overrun.timeNs = ClockNs(CLOCK_MONOTONIC);
            batch->records.push_back(std::move(overrun));
            continue;
          }
          Record error{kReadError};
          error.first = static_cast<uint32_t>(errno);
          batch->records.push_back(std::move(error));
          failed = true;
          break;
        }
        Decode(buffer.data(), static_cast<size_t>(n), batch.get());
      }
      if (batch->records.size() > snapshotted) {
        // Snapshots are taken at once; only the hand-over to JavaScript waits for the batch to fill.
        TakeSnapshots(batch.get(), snapshotted);
        snapshotted = batch->records.size();
        if (batchStartedNs == 0) batchStartedNs = ClockNs(CLOCK_MONOTONIC);
      }
      if (batch->records.empty()) continue;
      const bool due = failed || batch->records.size() >= kMaxBatchRecords ||
                       ClockNs(CLOCK_MONOTONIC) - batchStartedNs >= kBatchWindowMs * 1000000;
      if (!due) continue;
      shared_->batches++;
      shared_->pendingBatches++;
      if (batches_.NonBlockingCall(batch.get()) == napi_ok) {
        batch.release();
      } else {
        shared_->pendingBatches--;  // the function is closing: we are stopping
        break;
      }
      batch = std::make_unique<Batch>();
      snapshotted = 0;
      batchStartedNs = 0;
    }
  }

  void Decode(const char* data, size_t size, Batch* batch) {
    size_t remaining = size;
    for (auto* header = reinterpret_cast<const struct nlmsghdr*>(data); NLMSG_OK(header, remaining);
         header = NLMSG_NEXT(header, remaining)) {
      if (header->nlmsg_type == NLMSG_ERROR || header->nlmsg_type == NLMSG_NOOP) continue;
      if (header->nlmsg_len < NLMSG_LENGTH(sizeof(struct cn_msg))) continue;
      const auto* message = static_cast<const struct cn_msg*>(NLMSG_DATA(header));
      if (message->id.idx != CN_IDX_PROC || message->id.val != CN_VAL_PROC) continue;
      if (message->len < offsetof(struct proc_event, event_data) ||
          header->nlmsg_len < NLMSG_LENGTH(sizeof(struct cn_msg) + message->len)) continue;
      struct proc_event event;
      std::memset(&event, 0, sizeof event);
      std::memcpy(&event, message->data, std::min<size_t>(message->len, sizeof event));
      // Acks take a number from the same per-CPU sequence as events.
      TrackSequence(event.cpu, message->seq);
      if (event.what == proc_event::PROC_EVENT_NONE) {
        // The kernel multicasts every listener's ack (ack = our ack + 1, sequence renumbered), so ours
        // cannot be told apart: the first one after subscribing stands for it.
        if (!ackSeen_ && message->ack == 1) {
          ackSeen_ = true;
          Record subscribed{kSubscribed};
          subscribed.first = event.event_data.ack.err;
          batch->records.push_back(std::move(subscribed));
        }
        continue;
      }
      shared_->received++;
      Record record{kExec};
      record.cpu = event.cpu;
      record.timeNs = event.timestamp_ns;
      switch (event.what) {
        case proc_event::PROC_EVENT_EXEC:
          shared_->execs++;
          record.pid = event.event_data.exec.process_tgid;
          break;
        case proc_event::PROC_EVENT_FORK:
          if (event.event_data.fork.child_pid != event.event_data.fork.child_tgid) {
            shared_->threadEvents++;  // a new thread, not a new process
            continue;
          }
          shared_->forks++;
          record.kind = kFork;
          record.pid = event.event_data.fork.child_tgid;
          record.parentPid = event.event_data.fork.parent_tgid;
          break;
        case proc_event::PROC_EVENT_EXIT:
          if (event.event_data.exit.process_pid != event.event_data.exit.process_tgid) {
            shared_->threadEvents++;
            continue;
          }
          shared_->exits++;
          record.kind = kExit;
          record.pid = event.event_data.exit.process_tgid;
          record.parentPid = event.event_data.exit.parent_tgid;
          record.first = event.event_data.exit.exit_code;
          record.second = event.event_data.exit.exit_signal;
          break;
        case proc_event::PROC_EVENT_UID:
        case proc_event::PROC_EVENT_GID:
          if (event.event_data.id.process_pid != event.event_data.id.process_tgid) {
            shared_->threadEvents++;
            continue;
          }
          shared_->idChanges++;
          record.kind = event.what == proc_event::PROC_EVENT_UID ? kUidChange : kGidChange;
          record.pid = event.event_data.id.process_tgid;
          record.first = event.event_data.id.r.ruid;
          record.second = event.event_data.id.e.euid;
          break;
        default:
          continue;  // sid, ptrace, comm, coredump: nothing the sensor uses
      }
      batch->records.push_back(std::move(record));
    }
  }

  // The kernel numbers proc events per CPU; a jump means events we never received.
  void TrackSequence(uint32_t cpu, uint32_t seq) {
    if (cpu >= lastSeq_.size()) lastSeq_.resize(cpu + 1);
    std::optional<uint32_t>& last = lastSeq_[cpu];
    if (last && seq != static_cast<uint32_t>(*last + 1)) {
      uint32_t missed = seq - *last - 1;  // modulo 2^32; a reordering shows as a huge jump, so cap it
      if (missed < 0x80000000u) shared_->seqGaps += missed;
    }
    last = seq;
  }

  // /proc snapshots: full for execs, start time only for forks (the child's identity: pid + start time).
  void TakeSnapshots(Batch* batch, size_t from) {
    // CLOCK_MONOTONIC record times → CLOCK_BOOTTIME, the clock of /proc start times.
    const uint64_t bootMinusMonotonic = ClockNs(CLOCK_BOOTTIME) - ClockNs(CLOCK_MONOTONIC);
    std::vector<Record>& records = batch->records;
    for (size_t i = from; i < records.size(); i++) {
      Record& record = records[i];
      if (record.kind != kExec && record.kind != kFork) continue;
      if (record.kind == kExec && ExecsAgainLater(records, i)) {
        // /proc would already show the later program: nothing of it may be attributed to this exec.
        shared_->superseded++;
        shared_->partial++;
        Snapshot superseded;
        superseded.pid = record.pid;
        superseded.partial = true;
        record.snapshot = std::move(superseded);
        continue;
      }
      SnapshotRequest request;
      request.procRoot = procRoot_;
      request.pid = record.pid;
      request.maxArgsBytes = maxArgsBytes_;
      // One tick of slack: the kernel's start time and the record's time come from different reads.
      request.notStartedAfterBoottimeNs = record.timeNs + bootMinusMonotonic + NanosPerTick();
      request.statOnly = record.kind == kFork;
      record.snapshot = TakeSnapshot(request);
      if (record.snapshot->reused) shared_->pidReused++;
      if (record.kind == kExec && record.snapshot->partial) shared_->partial++;
    }
  }

  static bool ExecsAgainLater(const std::vector<Record>& records, size_t index) {
    for (size_t j = index + 1; j < records.size(); j++) {
      if (records[j].pid == records[index].pid && records[j].kind == kExec) return true;
    }
    return false;
  }

  int socket_ = -1;
  int wakeFd_ = -1;
  uint64_t socketBufferBytes_ = 0;
  size_t maxArgsBytes_ = 64 * 1024;
  std::string procRoot_ = "/proc";
  std::vector<std::optional<uint32_t>> lastSeq_;  // reader thread only
  bool ackSeen_ = false;                          // reader thread only
  SharedPtr shared_;
  BatchFunction batches_;
  std::thread reader_;
  std::mutex shutdownMutex_;
  bool stopped_ = false;
  napi_env cleanupHookEnv_ = nullptr;
};

Napi::Value RecordToJs(Napi::Env env, const Record& record) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("kind", Napi::Number::New(env, record.kind));
  switch (record.kind) {
    case kSubscribed:
    case kReadError:
      out.Set("code", Napi::Number::New(env, record.first));
      return out;
    case kOverrun:
      out.Set("timeNs", Napi::Number::New(env, static_cast<double>(record.timeNs)));
      return out;
    default:
      break;
  }
  out.Set("cpu", Napi::Number::New(env, record.cpu));
  out.Set("timeNs", Napi::Number::New(env, static_cast<double>(record.timeNs)));
  out.Set("pid", Napi::Number::New(env, record.pid));
  switch (record.kind) {
    case kFork:
      out.Set("parentPid", Napi::Number::New(env, record.parentPid));
      break;
    case kExit:
      out.Set("parentPid", Napi::Number::New(env, record.parentPid));
      out.Set("exitCode", Napi::Number::New(env, record.first));
      out.Set("exitSignal", Napi::Number::New(env, record.second));
      break;
    case kUidChange:
    case kGidChange:
      out.Set("realId", Napi::Number::New(env, record.first));
      out.Set("effectiveId", Napi::Number::New(env, record.second));
      break;
    default:
      break;
  }
  if (record.snapshot) out.Set("snapshot", SnapshotToJs(env, *record.snapshot));
  return out;
}

void DeliverBatch(Napi::Env env, Napi::Function callback, SharedPtr* shared, Batch* batch) {
  std::unique_ptr<Batch> owned(batch);
  if (shared != nullptr) (*shared)->pendingBatches--;
  // env is null when the environment is being torn down: the batch is only freed.
  if (static_cast<napi_env>(env) == nullptr || callback.IsEmpty()) return;
  try {
    Napi::Array records = Napi::Array::New(env, owned->records.size());
    for (size_t i = 0; i < owned->records.size(); i++) records.Set(static_cast<uint32_t>(i), RecordToJs(env, owned->records[i]));
    callback.Call({records});
  } catch (const Napi::Error& error) {
    error.ThrowAsJavaScriptException();  // reported as an uncaught exception; the sensor catches its own
  }
}

}  // namespace

void InitConnector(Napi::Env env, Napi::Object exports) {
  exports.Set("ProcessConnector", ProcessConnector::Define(env));
}

}  // namespace execsentry
