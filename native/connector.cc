// The kernel's netlink process connector, read on a dedicated thread.
//
// new ProcessConnector({ socketBufferBytes, maxArgsBytes, procRoot?, legacyKernel?, envVarNames?, exeFileKey? },
// onBatch) subscribes
// synchronously, so a missing privilege or a kernel without the connector throws at once with errno's code.
// The reader thread then decodes exec/fork/exit/id records, snapshots /proc/<pid> of every exec'd process
// before it can exit (procfs.cc) and hands batches to JavaScript through a thread-safe function. stop()
// unsubscribes, wakes the thread through an eventfd and joins it; it is idempotent and also runs from an
// environment cleanup hook, so worker threads and process exit are safe.
//
// Two ways to listen (drivers/connector/cn_proc.c):
// - Linux 6.6+ (struct proc_input: a listener names the event types it wants, cn_filter drops the rest):
//   one socket takes every record, unfiltered, and is not polled; a second socket takes exec records only
//   and is the reader's doorbell. Each exec wakes the reader once; it empties the doorbell, then drains the
//   full socket, so fork and exit records are read in passing (or by a 50 ms timer when no exec comes),
//   never one wake-up each. Loss accounting stays exact on the full socket. One broadcast reaches the two
//   sockets one after the other, waking each reader as it goes (net/netlink/af_netlink.c:
//   netlink_broadcast_filtered walks the group's list of sockets, where netlink_update_subscriptions adds
//   each at the head): an exec announced by the doorbell may not be in the full socket yet. The doorbell's
//   sequence numbers say which execs it announced; until the full socket has shown them, the reader
//   watches it too.
// - Older kernels ignore a proc_input request (cn_proc_mcast_ctl returned unless len == sizeof(op)): one
//   socket as before, with a classic BPF filter that drops thread fork/exit records before they wake us.
//
// Loss is counted, never hidden: ENOBUFS from recv (the receive queue overflowed: an overrun) and gaps in
// the connector's sequence numbers, which send_msg() numbers per CPU before any filtering (proc_event.cpu
// says which CPU). Behind the BPF filter every dropped thread record leaves a gap too, so there only the
// gaps that span an overrun are counted.
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
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
  kSessionChange = 9,  // setsid(): the process leads a new session and process group, without a terminal
};

// The event-type filter of Linux 6.6 (include/uapi/linux/cn_proc.h), spelled out for older headers.
struct ProcInput {
  uint32_t mcastOp;    // enum proc_cn_mcast_op
  uint32_t eventType;  // enum proc_cn_event bitmask
};
constexpr uint32_t kProcEventExec = 0x00000002;

constexpr size_t kMaxBatchRecords = 256;
// A batch is converted into JavaScript objects in one go on the JS thread: with 64 KiB command lines, 256
// of them would hold its event loop for hundreds of milliseconds, so argv bytes bound a batch too.
constexpr size_t kMaxBatchArgvBytes = 512 * 1024;
// Without an exec to wake the reader, fork/exit records wait at most this long in the full socket.
constexpr int kDrainIntervalMs = 50;
constexpr int kReaderNice = -10;
// Hand-overs to JavaScript at most this close together (records arriving sooner wait for the next one)...
constexpr uint64_t kCoalesceNs = 1000000;
// ... and this close in a sustained flow: after this many hand-overs in a row whose first record came within
// the window of the one before (an exec storm, a build), each hand-over costing the JavaScript thread more than
// its records (a wake-up, a callback, a write per batch: 1,727 writes instead of 4,805 for the same 6,000-exec
// storm, 33 µs less JavaScript CPU per exec here). The first record after a quiet window goes at once again.
constexpr uint64_t kSustainedCoalesceNs = 4000000;
constexpr int kSustainedHandOvers = 8;
// Batches handed to JavaScript and not yet processed. Beyond it the thread stops reading, so a stalled
// JavaScript thread costs the kernel's bounded socket buffer (and counted overruns), not unbounded memory.
constexpr int kMaxPendingBatches = 64;
constexpr unsigned kReceiveVector = 64;
constexpr size_t kMessageBytes = 1024;  // a connector record is ~100 bytes

struct Record {
  explicit Record(RecordKind recordKind) : kind(recordKind) {}
  // Only what JavaScript uses: every property handed over costs the JS thread.
  RecordKind kind;
  uint64_t timeNs = 0;      // exec, fork, exit: CLOCK_MONOTONIC, as the kernel stamped it
  int32_t pid = 0;          // process (thread group) concerned; the child for fork
  int32_t parentPid = 0;    // fork: the forking process
  // uid/gid change: the new effective id; exit: the task's exit_code (a wait status: the exit_group() code
  // << 8, or the killing signal | 0x80 for a core dump); subscribed/read error: errno
  uint32_t value = 0;
  uint32_t realId = 0;      // uid/gid change: the new real id
  uint64_t startTicks = 0;  // fork: the child's start time in /proc's clock ticks, from the record's time
  std::optional<Snapshot> snapshot;
  std::optional<std::vector<uint32_t>> groups;  // uid/gid change: the supplemental groups after it
  int32_t attachment = -1;  // its snapshot's or groups' index in its batch's attachments, once written there
};

struct Batch {
  std::vector<Record> records;
  size_t argvBytes = 0;  // of the snapshots: what converting them into JavaScript strings costs
  // The JSON array of the records' snapshots and groups, written by the reader thread (the JavaScript thread
  // runs the rules and the outputs; the reader waits in poll meanwhile).
  std::string attachments;
};

// Counters shared by the reader thread (writer) and JavaScript (stats()); outlives both through shared_ptr.
struct Shared {
  std::atomic<uint64_t> received{0}, execs{0}, forks{0}, exits{0}, threadEvents{0}, idChanges{0};
  std::atomic<uint64_t> overruns{0}, seqGaps{0}, partial{0}, exited{0}, denied{0}, pidReused{0}, superseded{0};
  std::atomic<uint64_t> batches{0}, sustainedHandOvers{0}, backpressureWaits{0}, wakeups{0}, lateExecs{0};
  std::atomic<int> pendingBatches{0};
  std::atomic<uint64_t> socketBufferBytes{0};
  // Records held while JavaScript was busy go the moment it is done: the JavaScript thread signals this
  // eventfd when it finishes its last pending batch while the reader holds records (rather than the reader
  // checking again after a while: 1 ms of latency on an idle host's login, whose execs come close together).
  // The store to readerHolding and the load of pendingBatches on one side, the decrement and the load of
  // readerHolding on the other, are sequentially consistent: one of the two sides always sees the other.
  int jsIdleFd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  std::atomic<bool> readerHolding{false};

  Shared() = default;
  Shared(const Shared&) = delete;
  Shared& operator=(const Shared&) = delete;
  ~Shared() {
    if (jsIdleFd >= 0) close(jsIdleFd);
  }

  // JavaScript is done with a batch.
  void BatchDone() {
    if (pendingBatches.fetch_sub(1) != 1 || !readerHolding.load() || jsIdleFd < 0) return;
    uint64_t one = 1;
    while (write(jsIdleFd, &one, sizeof one) < 0 && errno == EINTR) {
    }
  }
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

// Linux 6.6 brought per-listener event filters (drivers/connector/cn_proc.c cn_filter).
bool KernelFiltersEvents() {
  struct utsname name;
  if (uname(&name) != 0) return false;
  int major = 0, minor = 0;
  if (std::sscanf(name.release, "%d.%d", &major, &minor) != 2) return false;
  return major > 6 || (major == 6 && minor >= 6);
}

// Classic BPF over one connector message (nlmsghdr, cn_msg, proc_event): drops fork and exit records of
// threads (pid != tgid), keeps everything else. BPF_ABS loads are big-endian, the fields host-endian:
// constants are compared as htonl() shows them, two fields with each other as they are.
std::vector<struct sock_filter> ThreadRecordFilter() {
  constexpr uint32_t event = NLMSG_LENGTH(0) + offsetof(struct cn_msg, data);
  constexpr uint32_t what = event + offsetof(struct proc_event, what);
  constexpr uint32_t childPid = event + offsetof(struct proc_event, event_data.fork.child_pid);
  constexpr uint32_t childTgid = event + offsetof(struct proc_event, event_data.fork.child_tgid);
  constexpr uint32_t exitPid = event + offsetof(struct proc_event, event_data.exit.process_pid);
  constexpr uint32_t exitTgid = event + offsetof(struct proc_event, event_data.exit.process_tgid);
  return {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, what),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, htonl(proc_event::PROC_EVENT_FORK), 2, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, htonl(proc_event::PROC_EVENT_EXIT), 5, 0),
      BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
      // fork: child_pid == child_tgid?
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, childPid),
      BPF_STMT(BPF_MISC | BPF_TAX, 0),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, childTgid),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_X, 0, 4, 5),
      // exit: process_pid == process_tgid?
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, exitPid),
      BPF_STMT(BPF_MISC | BPF_TAX, 0),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, exitTgid),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_X, 0, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
      BPF_STMT(BPF_RET | BPF_K, 0),
  };
}

// What the reader thread got from the scheduler, for the start-up log.
enum class Priority { kRealtime, kNice, kNormal };

class ProcessConnector : public Napi::ObjectWrap<ProcessConnector> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ProcessConnector",
                       {InstanceMethod<&ProcessConnector::Stop>("stop"), InstanceMethod<&ProcessConnector::Stats>("stats"),
                        InstanceMethod<&ProcessConnector::Reader>("reader")});
  }

  explicit ProcessConnector(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ProcessConnector>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
      throw Napi::TypeError::New(env, "new ProcessConnector({ socketBufferBytes, maxArgsBytes, procRoot?, legacyKernel?, envVarNames?, exeFileKey? }, onBatch)");
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
    legacyKernel_ = options.Get("legacyKernel").ToBoolean().Value();
    envVarNames_ = StringList(options.Get("envVarNames"));
    exeFileKey_ = options.Get("exeFileKey").ToBoolean().Value();
    filtered_ = !legacyKernel_ && KernelFiltersEvents();

    shared_ = std::make_shared<Shared>();
    Subscribe(env, bufferBytes > 0 ? static_cast<int>(std::min(bufferBytes, 1024.0 * 1024 * 1024)) : 0);
    shared_->socketBufferBytes = socketBufferBytes_;
    batches_ = BatchFunction::New(env, info[1].As<Napi::Function>(), "execsentry.processConnector", 0, 1,
                                  new SharedPtr(shared_), [](Napi::Env, void*, SharedPtr* context) { delete context; });
    napi_add_env_cleanup_hook(env, &ProcessConnector::OnEnvCleanup, this);
    cleanupHookEnv_ = env;
    std::promise<Priority> priority;
    std::future<Priority> got = priority.get_future();
    reader_ = std::thread([this, &priority] {
      priority.set_value(RaisePriority());
      Run();
    });
    priority_ = got.get();
  }

  ~ProcessConnector() override {
    if (cleanupHookEnv_ != nullptr) napi_remove_env_cleanup_hook(cleanupHookEnv_, &ProcessConnector::OnEnvCleanup, this);
    Shutdown();
  }

 private:
  int OpenSocket(Napi::Env env, int bufferBytes) {
    int fd = socket(PF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_CONNECTOR);
    if (fd < 0) ThrowErrno(env, "socket(NETLINK_CONNECTOR)", errno);
    sockets_.push_back(fd);
    // SO_RCVBUFFORCE passes net.core.rmem_max (needs CAP_NET_ADMIN, which subscribing needs anyway);
    // SO_RCVBUF is the fallback, capped by rmem_max.
    if (bufferBytes > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufferBytes, sizeof bufferBytes) != 0) {
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufferBytes, sizeof bufferBytes);
    }
    struct sockaddr_nl address;
    std::memset(&address, 0, sizeof address);
    address.nl_family = AF_NETLINK;
    address.nl_groups = CN_IDX_PROC;
    address.nl_pid = 0;  // the kernel picks a unique port id (several connectors may live in one process)
    if (bind(fd, reinterpret_cast<struct sockaddr*>(&address), sizeof address) != 0) Fail(env, "bind(CN_IDX_PROC)");
    return fd;
  }

  [[noreturn]] void Fail(Napi::Env env, const char* what) {
    int error = errno;
    for (int fd : sockets_) SendMulticastOp(fd, PROC_CN_MCAST_IGNORE, 0);
    CloseFds();
    ThrowErrno(env, what, error);
  }

  void Subscribe(Napi::Env env, int bufferBytes) {
    // The doorbell only says "an exec is waiting": a small buffer is enough (overflowing it loses nothing).
    // Bound before the full socket, it is reached after it by each broadcast (see the top of this file), so
    // an exec is normally in the full socket by the time its doorbell rings.
    if (filtered_) doorbell_ = OpenSocket(env, 256 * 1024);
    records_ = OpenSocket(env, bufferBytes);
    int actual = 0;
    socklen_t length = sizeof actual;
    if (getsockopt(records_, SOL_SOCKET, SO_RCVBUF, &actual, &length) == 0) socketBufferBytes_ = static_cast<uint64_t>(actual);
    if (!filtered_) {
      std::vector<struct sock_filter> code = ThreadRecordFilter();
      struct sock_fprog program = {static_cast<unsigned short>(code.size()), code.data()};
      if (setsockopt(records_, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof program) != 0) Fail(env, "setsockopt(SO_ATTACH_FILTER)");
    }
    wakeFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wakeFd_ < 0) Fail(env, "eventfd");
    if (!SendMulticastOp(records_, PROC_CN_MCAST_LISTEN, 0)) Fail(env, "send(PROC_CN_MCAST_LISTEN)");
    if (filtered_ && !SendMulticastOp(doorbell_, PROC_CN_MCAST_LISTEN, kProcEventExec)) Fail(env, "send(PROC_CN_MCAST_LISTEN)");
  }

  // eventTypes 0: the plain request every kernel understands (all events); otherwise a 6.6 proc_input.
  static bool SendMulticastOp(int fd, enum proc_cn_mcast_op op, uint32_t eventTypes) {
    const ProcInput input = {static_cast<uint32_t>(op), eventTypes};
    const size_t payload = eventTypes == 0 ? sizeof(uint32_t) : sizeof input;
    alignas(struct nlmsghdr) char buffer[NLMSG_SPACE(sizeof(struct cn_msg) + sizeof(ProcInput))];
    std::memset(buffer, 0, sizeof buffer);
    auto* header = reinterpret_cast<struct nlmsghdr*>(buffer);
    header->nlmsg_len = NLMSG_LENGTH(sizeof(struct cn_msg) + payload);
    header->nlmsg_type = NLMSG_DONE;
    header->nlmsg_pid = 0;
    auto* message = static_cast<struct cn_msg*>(NLMSG_DATA(header));
    message->id.idx = CN_IDX_PROC;
    message->id.val = CN_VAL_PROC;
    message->ack = 0;
    message->len = static_cast<uint16_t>(payload);
    std::memcpy(message->data, &input, payload);
    for (;;) {
      if (send(fd, buffer, header->nlmsg_len, 0) >= 0) return true;
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
    for (int fd : sockets_) SendMulticastOp(fd, PROC_CN_MCAST_IGNORE, 0);
    CloseFds();
    batches_.Release();
  }

  void CloseFds() {
    for (int fd : sockets_) close(fd);
    sockets_.clear();
    if (wakeFd_ >= 0) close(wakeFd_);
    records_ = doorbell_ = wakeFd_ = -1;
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
    put("exitedBeforeSnapshot", s.exited);
    put("denied", s.denied);
    put("pidReused", s.pidReused);
    put("superseded", s.superseded);
    put("batches", s.batches);
    put("sustainedHandOvers", s.sustainedHandOvers);
    put("lateExecs", s.lateExecs);
    put("backpressureWaits", s.backpressureWaits);
    put("wakeups", s.wakeups);
    put("socketBufferBytes", s.socketBufferBytes);
    put("socketEndsSkipped", SocketCopyStats().skipped);  // process-wide (procfs.cc CopyCloser)
    return out;
  }

  // How the reader runs: { priority, subscription }, for the start-up log.
  Napi::Value Reader(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object out = Napi::Object::New(env);
    out.Set("priority", priority_ == Priority::kRealtime ? "SCHED_FIFO 1" : priority_ == Priority::kNice ? "nice -10" : "normal");
    out.Set("subscription", filtered_ ? "exec doorbell + unfiltered records (Linux 6.6+ event filter)" : "one socket, BPF filter on thread records");
    return out;
  }

  // --- reader thread ---

  // A short-lived process must still be there when its exec record is read: the reader runs ahead of
  // ordinary work. The lowest real-time priority when allowed (CAP_SYS_NICE, or RLIMIT_RTPRIO >= 1:
  // kernel/sched/syscalls.c), else nice -10 (CAP_SYS_NICE or RLIMIT_NICE), else as it is. It cannot starve
  // the host: it blocks in poll() between execs, and the kernel throttles real-time threads beyond
  // sched_rt_runtime_us (95 % of each second by default).
  static Priority RaisePriority() {
    pthread_setname_np(pthread_self(), "execsentry-read");
    struct sched_param param;
    std::memset(&param, 0, sizeof param);
    param.sched_priority = sched_get_priority_min(SCHED_FIFO);
    if (pthread_setschedparam(pthread_self(), SCHED_FIFO | SCHED_RESET_ON_FORK, &param) == 0) return Priority::kRealtime;
    if (setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), kReaderNice) == 0) return Priority::kNice;
    return Priority::kNormal;
  }

  void Run() {
    receive_.assign(kReceiveVector * kMessageBytes, 0);
    batch_ = std::make_unique<Batch>();
    bool recordsMayWait = true;  // the full socket may hold records no doorbell announced (filtered mode)
    while (!failed_) {
      const bool holding = !batch_->records.empty();
      shared_->readerHolding.store(holding);
      const bool jsBusy = holding && shared_->pendingBatches.load() > 0;
      // Time left in the coalescing window: while it runs, its end (not JavaScript) decides.
      const int64_t windowLeft = static_cast<int64_t>(lastHandOverNs_ + coalesceNs_) - static_cast<int64_t>(ClockNs(CLOCK_MONOTONIC));
      struct pollfd set[4];
      nfds_t count = 0;
      set[count++] = {wakeFd_, POLLIN, 0};
      set[count++] = {filtered_ ? doorbell_ : records_, POLLIN, 0};
      // Idle (filtered mode): the first record of any kind wakes us; otherwise the drain timer does, unless
      // the doorbell announced an exec the full socket has not shown yet: its arrival must wake us.
      const bool watchRecords = filtered_ && (!recordsMayWait || ExecAnnouncedNotRead());
      if (watchRecords) set[count++] = {records_, POLLIN, 0};
      const bool watchJs = jsBusy && windowLeft <= 0 && shared_->jsIdleFd >= 0;
      if (watchJs) set[count++] = {shared_->jsIdleFd, POLLIN, 0};
      int64_t timeoutNs = filtered_ && recordsMayWait ? kDrainIntervalMs * 1000000LL : -1;
      if (holding) {
        // Held records go at the end of the coalescing window, or, while JavaScript is still busy, when it
        // signals that it is done (every kCoalesceNs where no eventfd could be made); at once if it finished
        // between the hand-over check and readerHolding (its signal may not have come).
        const int64_t left = windowLeft > 0 ? windowLeft : watchJs ? -1 : jsBusy ? kCoalesceNs : 0;
        if (left >= 0) timeoutNs = timeoutNs < 0 ? left : std::min(timeoutNs, left);
      }
      const bool drainTimer = filtered_ && recordsMayWait && timeoutNs == kDrainIntervalMs * 1000000LL;
      struct timespec timeout = {static_cast<time_t>(timeoutNs / 1000000000LL), static_cast<long>(timeoutNs % 1000000000LL)};
      int ready = ppoll(set, count, timeoutNs < 0 ? nullptr : &timeout, nullptr);
      if (ready < 0) {
        if (errno == EINTR) continue;
        break;
      }
      shared_->wakeups++;
      // When what this wake-up reads became readable (before the drain and its snapshots take their time).
      const uint64_t wokeNs = ClockNs(CLOCK_MONOTONIC);
      if (set[0].revents != 0) break;
      if (watchJs && set[count - 1].revents != 0) {
        uint64_t signals;
        while (read(shared_->jsIdleFd, &signals, sizeof signals) < 0 && errno == EINTR) {
        }
      }
      const bool doorbell = set[1].revents != 0;
      if (filtered_) {
        if (doorbell) Drain(doorbell_, false);
        if (doorbell || (watchRecords && set[2].revents != 0) || (ready == 0 && recordsMayWait)) {
          const uint64_t execsBefore = shared_->execs.load();
          recordsMayWait = Drain(records_, true) > 0;
          // Execs no wake-up announced: they waited for the drain timer (a doorbell overflow loses some).
          if (ready == 0 && drainTimer) shared_->lateExecs += shared_->execs.load() - execsBefore;
        }
      } else if (doorbell) {
        Drain(records_, true);
      }
      // At once when JavaScript has nothing pending and has not just been handed a batch; in a storm the
      // records of up to coalesceNs_ share one hand-over, which costs the JS thread more than its records.
      if (!batch_->records.empty() && firstHeldNs_ == 0) firstHeldNs_ = wokeNs;
      const bool idle = shared_->pendingBatches.load() == 0 && ClockNs(CLOCK_MONOTONIC) - lastHandOverNs_ >= coalesceNs_;
      const bool full = batch_->records.size() >= kMaxBatchRecords || batch_->argvBytes >= kMaxBatchArgvBytes;
      if (!batch_->records.empty() && (idle || full)) HandOver();
    }
    if (!batch_->records.empty()) HandOver();
  }

  // Reads what fd holds into batch_ (decoding it when `decode`, else noting the execs it announces),
  // snapshotting execs as soon as what is queued has been read; returns the number of records decoded.
  size_t Drain(int fd, bool decode) {
    struct mmsghdr messages[kReceiveVector];
    struct iovec vectors[kReceiveVector];
    size_t decoded = 0;
    size_t snapshotted = batch_->records.size();
    for (;;) {
      for (unsigned i = 0; i < kReceiveVector; i++) {
        vectors[i] = {receive_.data() + i * kMessageBytes, kMessageBytes};
        std::memset(&messages[i], 0, sizeof messages[i]);
        messages[i].msg_hdr.msg_iov = &vectors[i];
        messages[i].msg_hdr.msg_iovlen = 1;
      }
      int n = recvmmsg(fd, messages, kReceiveVector, MSG_DONTWAIT, nullptr);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == ENOBUFS) {
          if (!decode) continue;  // the doorbell overflowed: the full socket still has every record
          shared_->overruns++;
          overrunSeen_ = true;
          batch_->records.emplace_back(kOverrun);
          continue;
        }
        Record error{kReadError};
        error.value = static_cast<uint32_t>(errno);
        batch_->records.push_back(std::move(error));
        failed_ = true;
        break;
      }
      const size_t before = batch_->records.size();
      for (int i = 0; i < n; i++) {
        const char* data = receive_.data() + i * kMessageBytes;
        if (decode) Decode(data, messages[i].msg_len);
        else Announce(data, messages[i].msg_len);
      }
      decoded += batch_->records.size() - before;
      if (static_cast<unsigned>(n) < kReceiveVector) break;
    }
    // Snapshots wait for the whole queue (bounded by the socket buffer): a later record can show that an
    // earlier exec's /proc view would belong to someone else.
    if (batch_->records.size() > snapshotted) TakeSnapshots(snapshotted);
    return decoded;
  }

  // Hands what batch_ holds to JavaScript, in batches of at most kMaxBatchRecords records and
  // kMaxBatchArgvBytes of argv, waiting (in poll, stoppable) while too many are still unprocessed.
  void HandOver() {
    const bool flowing = firstHeldNs_ != 0 && firstHeldNs_ < lastHandOverNs_ + coalesceNs_;
    handOversFlowing_ = flowing ? std::min(handOversFlowing_ + 1, kSustainedHandOvers) : 0;
    coalesceNs_ = handOversFlowing_ >= kSustainedHandOvers ? kSustainedCoalesceNs : kCoalesceNs;
    if (coalesceNs_ == kSustainedCoalesceNs) shared_->sustainedHandOvers++;
    firstHeldNs_ = 0;
    std::unique_ptr<Batch> held = std::move(batch_);
    batch_ = std::make_unique<Batch>();
    size_t next = 0;
    while (next < held->records.size() && !failed_) {
      auto part = std::make_unique<Batch>();
      for (; next < held->records.size() && part->records.size() < kMaxBatchRecords && part->argvBytes < kMaxBatchArgvBytes; next++) {
        Record& record = held->records[next];
        if (record.snapshot && record.snapshot->args) part->argvBytes += ArgvBytes(*record.snapshot->args);
        part->records.push_back(std::move(record));
      }
      WriteAttachments(part.get());
      while (shared_->pendingBatches.load() >= kMaxPendingBatches) {
        shared_->backpressureWaits++;
        struct pollfd wake = {wakeFd_, POLLIN, 0};
        if (poll(&wake, 1, 2) > 0) {
          failed_ = true;  // stopping: the records are dropped with the thread
          return;
        }
      }
      lastHandOverNs_ = ClockNs(CLOCK_MONOTONIC);
      shared_->batches++;
      shared_->pendingBatches++;
      if (batches_.NonBlockingCall(part.get()) == napi_ok) {
        part.release();
      } else {
        shared_->pendingBatches--;  // the function is closing: we are stopping
        failed_ = true;
      }
    }
  }

  static void WriteAttachments(Batch* batch) {
    batch->attachments = "[";
    int32_t next = 0;
    for (Record& record : batch->records) {
      if (!record.snapshot && !record.groups) continue;
      if (next > 0) batch->attachments += ',';
      if (record.snapshot) SnapshotJson(*record.snapshot, &batch->attachments);
      else GroupsJson(*record.groups, &batch->attachments);
      record.attachment = next++;
      record.snapshot.reset();
      record.groups.reset();
    }
    batch->attachments += ']';
  }

  static size_t ArgvBytes(const DecodedArgs& args) {
    size_t bytes = 0;
    for (const std::string& arg : args.args) bytes += arg.size() + 16;  // + a JS string's own cost, roughly
    return bytes;
  }

  // Calls visit(message, event) for each well-formed proc connector message in one datagram.
  template <typename Visit>
  static void ForEachProcEvent(const char* data, size_t size, Visit&& visit) {
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
      visit(*message, event);
    }
  }

  // A doorbell message: the exec it announces carries this CPU and sequence number in the full socket too
  // (send_msg numbers a record once, before the per-socket filter).
  void Announce(const char* data, size_t size) {
    ForEachProcEvent(data, size, [this](const struct cn_msg& message, const struct proc_event& event) {
      if (event.what != proc_event::PROC_EVENT_EXEC) return;
      const bool read = event.cpu < lastSeq_.size() && lastSeq_[event.cpu] && SeqReached(*lastSeq_[event.cpu], message.seq);
      if (read) return;  // the usual case: the full socket is reached first
      if (event.cpu >= announcedSeq_.size()) announcedSeq_.resize(event.cpu + 1);
      announcedSeq_[event.cpu] = message.seq;
    });
  }

  // Whether the doorbell announced an exec the full socket has not shown yet (TrackSequence clears an
  // announcement once the full socket passes it). Per CPU, records keep their order (send_msg numbers and
  // sends each under a per-CPU lock); a lost record (an overrun) is passed by the next one from its CPU.
  bool ExecAnnouncedNotRead() const {
    for (const std::optional<uint32_t>& announced : announcedSeq_) {
      if (announced) return true;
    }
    return false;
  }

  void Decode(const char* data, size_t size) {
    ForEachProcEvent(data, size, [this](const struct cn_msg& message, const struct proc_event& event) {
      DecodeEvent(message, event);
    });
  }

  void DecodeEvent(const struct cn_msg& message, const struct proc_event& event) {
    // Acks take a number from the same per-CPU sequence as events.
    TrackSequence(event.cpu, message.seq);
    if (event.what == proc_event::PROC_EVENT_NONE) {
      // The kernel multicasts every listener's ack (ack = our ack + 1, sequence renumbered), so ours
      // cannot be told apart: the first one after subscribing stands for it.
      if (!ackSeen_ && message.ack == 1) {
        ackSeen_ = true;
        Record subscribed{kSubscribed};
        subscribed.value = event.event_data.ack.err;
        batch_->records.push_back(std::move(subscribed));
      }
      return;
    }
    shared_->received++;
    Record record{kExec};
    record.timeNs = event.timestamp_ns;
    switch (event.what) {
      case proc_event::PROC_EVENT_EXEC:
        shared_->execs++;
        record.pid = event.event_data.exec.process_tgid;
        break;
      case proc_event::PROC_EVENT_FORK:
        if (event.event_data.fork.child_pid != event.event_data.fork.child_tgid) {
          shared_->threadEvents++;  // a new thread, not a new process
          return;
        }
        shared_->forks++;
        record.kind = kFork;
        record.pid = event.event_data.fork.child_tgid;
        record.parentPid = event.event_data.fork.parent_tgid;
        break;
      case proc_event::PROC_EVENT_EXIT:
        if (event.event_data.exit.process_pid != event.event_data.exit.process_tgid) {
          shared_->threadEvents++;
          return;
        }
        shared_->exits++;
        record.kind = kExit;
        record.pid = event.event_data.exit.process_tgid;
        // exit_signal is the signal the parent is sent (SIGCHLD), not what killed the process: unused
        record.value = event.event_data.exit.exit_code;
        break;
      case proc_event::PROC_EVENT_UID:
      case proc_event::PROC_EVENT_GID:
        if (event.event_data.id.process_pid != event.event_data.id.process_tgid) {
          shared_->threadEvents++;
          return;
        }
        shared_->idChanges++;
        record.kind = event.what == proc_event::PROC_EVENT_UID ? kUidChange : kGidChange;
        record.pid = event.event_data.id.process_tgid;
        record.value = event.event_data.id.e.euid;  // the same union slot as egid for a gid change
        record.realId = event.event_data.id.r.ruid;  // and as rgid
        break;
      case proc_event::PROC_EVENT_SID:
        // setsid() acts on the whole process (process_pid is the calling thread)
        shared_->idChanges++;
        record.kind = kSessionChange;
        record.pid = event.event_data.sid.process_tgid;
        break;
      default:
        return;  // ptrace, comm, coredump: nothing the sensor uses
    }
    batch_->records.push_back(std::move(record));
  }

  // The kernel numbers proc events per CPU; a jump means events we never received. Behind the BPF filter
  // (older kernels) dropped thread records are jumps too: only a jump across an overrun counts there.
  void TrackSequence(uint32_t cpu, uint32_t seq) {
    if (cpu >= lastSeq_.size()) {
      lastSeq_.resize(cpu + 1);
      overrunPending_.resize(cpu + 1, false);
    }
    if (overrunSeen_) {
      overrunSeen_ = false;
      overrunPending_.assign(overrunPending_.size(), true);
    }
    std::optional<uint32_t>& last = lastSeq_[cpu];
    if (last && seq != static_cast<uint32_t>(*last + 1) && (filtered_ || overrunPending_[cpu])) {
      uint32_t missed = seq - *last - 1;  // modulo 2^32; a reordering shows as a huge jump, so cap it
      if (missed < 0x80000000u) shared_->seqGaps += missed;
    }
    overrunPending_[cpu] = false;
    last = seq;
    // Cleared, not kept for comparison: 2^31 records later an old number would read as still ahead.
    if (cpu < announcedSeq_.size() && announcedSeq_[cpu] && SeqReached(seq, *announcedSeq_[cpu])) announcedSeq_[cpu].reset();
  }

  // Whether a CPU's sequence has come as far as `target` once it shows `seq` (modulo 2^32, as it wraps).
  static bool SeqReached(uint32_t seq, uint32_t target) { return static_cast<int32_t>(seq - target) >= 0; }

  // /proc snapshots of the execs from `from` on. Fork records read nothing: the child's start time is the
  // record's time on /proc's clock (copy_process() takes start_boottime moments before it sends the record),
  // and the table matches it within one tick.
  void TakeSnapshots(size_t from) {
    // CLOCK_MONOTONIC record times → CLOCK_BOOTTIME, the clock of /proc start times.
    const uint64_t bootMinusMonotonic = ClockNs(CLOCK_BOOTTIME) - ClockNs(CLOCK_MONOTONIC);
    std::vector<Record>& records = batch_->records;
    // Per pid, its last exec and its last exec or id change among these records (one pass, not one scan
    // of the rest per record: after a backlog a batch holds thousands).
    std::unordered_map<int32_t, size_t> lastExec, lastExecOrIdChange;
    for (size_t i = from; i < records.size(); i++) {
      const Record& record = records[i];
      if (record.kind == kExec) lastExec[record.pid] = i;
      if (record.kind == kExec || record.kind == kUidChange || record.kind == kGidChange) lastExecOrIdChange[record.pid] = i;
    }
    for (size_t i = from; i < records.size(); i++) {
      Record& record = records[i];
      if (record.kind == kFork) record.startTicks = (record.timeNs + bootMinusMonotonic) / NanosPerTick();
      if ((record.kind == kUidChange || record.kind == kGidChange) && lastExecOrIdChange[record.pid] == i) {
        // A login changes its ids several times in a row: the groups once, after the last change (none if
        // it execs later in the batch: that snapshot has them).
        record.groups = ReadGroups(procRoot_, record.pid, record.timeNs + bootMinusMonotonic + NanosPerTick());
      }
      if (record.kind != kExec) continue;
      if (lastExec[record.pid] != i) {
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
      request.envVarNames = &envVarNames_;
      request.exeFileKey = exeFileKey_;
      request.withoutPidfdGetfd = legacyKernel_;
      // One tick of slack: the kernel's start time and the record's time come from different reads.
      request.notStartedAfterBoottimeNs = record.timeNs + bootMinusMonotonic + NanosPerTick();
      record.snapshot = TakeSnapshot(request);
      if (record.snapshot->args) batch_->argvBytes += ArgvBytes(*record.snapshot->args);
      if (record.snapshot->reused) shared_->pidReused++;
      if (record.snapshot->partial) shared_->partial++;
      if (record.snapshot->exited) shared_->exited++;
      if (record.snapshot->denied) shared_->denied++;
    }
  }

  std::vector<int> sockets_;
  int records_ = -1;   // every record (filtered mode: unfiltered; polled only while idle or awaiting an announced exec)
  int doorbell_ = -1;  // filtered mode: exec records only, polled
  std::vector<std::optional<uint32_t>> announcedSeq_;  // per CPU: the last exec the doorbell announced
  int wakeFd_ = -1;
  bool legacyKernel_ = false;
  bool filtered_ = false;
  Priority priority_ = Priority::kNormal;
  uint64_t socketBufferBytes_ = 0;
  size_t maxArgsBytes_ = 64 * 1024;
  std::string procRoot_ = "/proc";
  std::vector<std::string> envVarNames_;
  bool exeFileKey_ = false;
  // reader thread only:
  std::vector<char> receive_;
  std::unique_ptr<Batch> batch_;
  bool failed_ = false;
  std::vector<std::optional<uint32_t>> lastSeq_;
  std::vector<bool> overrunPending_;
  bool overrunSeen_ = false;
  bool ackSeen_ = false;
  uint64_t lastHandOverNs_ = 0;
  // The coalescing window now (kCoalesceNs, or kSustainedCoalesceNs in a sustained flow), when the records of
  // the batch being filled were first seen, and how many hand-overs in a row came in a flow.
  uint64_t coalesceNs_ = kCoalesceNs;
  uint64_t firstHeldNs_ = 0;
  int handOversFlowing_ = 0;
  SharedPtr shared_;
  BatchFunction batches_;
  std::thread reader_;
  std::mutex shutdownMutex_;
  bool stopped_ = false;
  napi_env cleanupHookEnv_ = nullptr;
};

// A record as JavaScript receives it: kRecordStride numbers in one Float64Array (src/native.ts
// decodeRecords), and what it carries beyond numbers (an exec's snapshot, a uid/gid change's groups) as an
// element of the batch's JSON array of attachments. An object per record made here cost a Node-API call per
// property, three records per exec, more than the JavaScript that reads them; typed-array slots cost
// nothing, and JavaScript makes the small objects in a fraction.
// Slots: kind, pid, timeNs, two per kind (fork: parentPid, startTicks; exit: exit status; uid/gid change:
// effective id, real id; subscribed/read error: errno, in the pid slot's place), attachment index or -1.
constexpr size_t kRecordStride = 6;

void PackRecord(const Record& record, int32_t attachment, double* slots) {
  slots[0] = record.kind;
  slots[1] = record.pid;
  slots[2] = static_cast<double>(record.timeNs);
  slots[3] = 0;
  slots[4] = 0;
  slots[5] = attachment;
  switch (record.kind) {
    case kFork:
      slots[3] = record.parentPid;
      slots[4] = static_cast<double>(record.startTicks);
      break;
    case kExit:
      slots[3] = record.value;
      break;
    case kUidChange:
    case kGidChange:
      slots[3] = record.value;
      slots[4] = record.realId;
      break;
    case kSubscribed:
    case kReadError:
      slots[1] = record.value;
      break;
    case kExec:
    case kSessionChange:
    case kOverrun:
      break;
  }
}

void DeliverBatch(Napi::Env env, Napi::Function callback, SharedPtr* shared, Batch* batch) {
  std::unique_ptr<Batch> owned(batch);
  // Counted as pending until JavaScript is done with it: the reader batches only while JavaScript is busy.
  struct Done {
    SharedPtr* shared;
    ~Done() {
      if (shared != nullptr) (*shared)->BatchDone();
    }
  } done{shared};
  // env is null when the environment is being torn down: the batch is only freed.
  if (static_cast<napi_env>(env) == nullptr || callback.IsEmpty()) return;
  try {
    const size_t count = owned->records.size();
    Napi::Float64Array numbers = Napi::Float64Array::New(env, count * kRecordStride);
    double* slots = numbers.Data();
    for (size_t i = 0; i < count; i++) PackRecord(owned->records[i], owned->records[i].attachment, slots + i * kRecordStride);
    callback.Call({numbers, Napi::String::New(env, owned->attachments)});
  } catch (const Napi::Error& error) {
    error.ThrowAsJavaScriptException();  // reported as an uncaught exception; the sensor catches its own
  }
}

}  // namespace

void InitConnector(Napi::Env env, Napi::Object exports) {
  exports.Set("ProcessConnector", ProcessConnector::Define(env));
}

}  // namespace execsentry
