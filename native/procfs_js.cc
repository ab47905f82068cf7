// The JavaScript face of procfs.cc: the snapshot object, scanProcesses() (a whole /proc walk on a worker
// thread, never on the JS thread) and the clock offsets used to turn kernel times into wall-clock times.
#include <time.h>

#include <memory>
#include <string>
#include <vector>

#include "parts.h"
#include "procfs_js.h"

namespace execsentry {

namespace {

const char* StdStreamTypeName(StdStream::Type type) {
  switch (type) {
    case StdStream::Type::kClosed: return "closed";
    case StdStream::Type::kPipe: return "pipe";
    case StdStream::Type::kSocket: return "socket";
    case StdStream::Type::kFile: return "file";
    case StdStream::Type::kCharDevice: return "character_device";
    case StdStream::Type::kOther: break;
  }
  return "other";
}

Napi::Object StdStreamToJs(Napi::Env env, const Keys& keys, const StdStream& stream) {
  Napi::Object out = Napi::Object::New(env);
  const auto put = [&](Key key, napi_value value) { keys.Put(out, key, value); };
  const auto text = [&](Key key, const std::string& value) {
    if (!value.empty()) put(key, Napi::String::New(env, value));
  };
  const auto port = [&](Key key, int32_t value) {
    if (value >= 0) put(key, Napi::Number::New(env, value));
  };
  put(Key::kType, Napi::String::New(env, StdStreamTypeName(stream.type)));
  text(Key::kPath, stream.path);
  if (stream.type == StdStream::Type::kCharDevice) {
    Napi::Array pair = Napi::Array::New(env, 2);
    pair.Set(0u, Napi::Number::New(env, static_cast<double>(stream.device.major)));
    pair.Set(1u, Napi::Number::New(env, static_cast<double>(stream.device.minor)));
    put(Key::kDevice, pair);
  }
  text(Key::kProtocol, stream.protocol);
  text(Key::kLocalIp, stream.localIp);
  port(Key::kLocalPort, stream.localPort);
  text(Key::kRemoteIp, stream.remoteIp);
  port(Key::kRemotePort, stream.remotePort);
  return out;
}

}  // namespace

Napi::Object SnapshotToJs(Napi::Env env, const Keys& keys, const Snapshot& snapshot) {
  Napi::Object out = Napi::Object::New(env);
  const auto put = [&](Key key, napi_value value) { keys.Put(out, key, value); };
  const auto number = [&](double value) { return Napi::Number::New(env, value); };
  const auto yes = [&](Key key) { put(key, Napi::Boolean::New(env, true)); };
  put(Key::kPid, number(snapshot.pid));
  put(Key::kPartial, Napi::Boolean::New(env, snapshot.partial));
  if (snapshot.exited) yes(Key::kExited);
  if (snapshot.denied) yes(Key::kDenied);
  if (snapshot.reused) yes(Key::kReused);
  if (snapshot.kernelThread) yes(Key::kKernelThread);
  if (snapshot.stat) {
    const ProcStat& stat = *snapshot.stat;
    bool commLossy = false;
    put(Key::kComm, Napi::String::New(env, ToUtf8Lossy(stat.comm, &commLossy)));
    put(Key::kStartTicks, number(static_cast<double>(stat.startTicks)));
    put(Key::kPpid, number(static_cast<double>(stat.ppid)));
    put(Key::kPgid, number(static_cast<double>(stat.pgid)));
    put(Key::kSid, number(static_cast<double>(stat.sid)));
    put(Key::kTtyNr, number(static_cast<double>(stat.ttyNr)));
  }
  if (snapshot.status) {
    const ProcStatus& status = *snapshot.status;
    Napi::Array uids = Napi::Array::New(env, 3), gids = Napi::Array::New(env, 3);
    for (uint32_t i = 0; i < 3; i++) {
      uids.Set(i, number(status.uid[i]));
      gids.Set(i, number(status.gid[i]));
    }
    put(Key::kUids, uids);
    put(Key::kGids, gids);
    if (!status.capEff.empty()) put(Key::kCapEff, Napi::String::New(env, status.capEff));
    if (!status.capPrm.empty()) put(Key::kCapPrm, Napi::String::New(env, status.capPrm));
  }
  if (snapshot.groups) {
    Napi::Array groups = Napi::Array::New(env, snapshot.groups->size());
    for (size_t i = 0; i < snapshot.groups->size(); i++) groups.Set(static_cast<uint32_t>(i), number((*snapshot.groups)[i]));
    put(Key::kGroups, groups);
  }
  const auto bytes = [&](const std::string& raw) { return Napi::Buffer<char>::Copy(env, raw.data(), raw.size()); };
  if (snapshot.executable) put(Key::kExecutable, Napi::String::New(env, *snapshot.executable));
  if (snapshot.executableBytes) put(Key::kExecutableBytes, bytes(*snapshot.executableBytes));
  if (snapshot.cwd) put(Key::kCwd, Napi::String::New(env, *snapshot.cwd));
  if (snapshot.cwdBytes) put(Key::kCwdBytes, bytes(*snapshot.cwdBytes));
  if (snapshot.pathsLossy) yes(Key::kPathsLossy);
  if (snapshot.args) {
    const DecodedArgs& decoded = *snapshot.args;
    Napi::Array args = Napi::Array::New(env, decoded.args.size());
    for (size_t i = 0; i < decoded.args.size(); i++) args.Set(static_cast<uint32_t>(i), Napi::String::New(env, decoded.args[i]));
    put(Key::kArgs, args);
    if (decoded.truncated) yes(Key::kArgsTruncated);
    if (decoded.lossy) {
      yes(Key::kArgsLossy);
      Napi::Array argsBytes = Napi::Array::New(env, decoded.bytes.size());
      for (size_t i = 0; i < decoded.bytes.size(); i++) argsBytes.Set(static_cast<uint32_t>(i), bytes(decoded.bytes[i]));
      put(Key::kArgsBytes, argsBytes);
    }
  }
  const auto strings = [&](Key key, const std::vector<std::string>& list) {
    if (list.empty()) return;
    Napi::Array array = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); i++) array.Set(static_cast<uint32_t>(i), Napi::String::New(env, list[i]));
    put(key, array);
  };
  strings(Key::kEnvVars, snapshot.envVars);
  strings(Key::kEnvVarsOversized, snapshot.envVarsOversized);
  if (snapshot.envVarsTruncated) yes(Key::kEnvVarsTruncated);
  if (snapshot.cgroup) {
    bool lossy = false;
    put(Key::kCgroup, Napi::String::New(env, ToUtf8Lossy(*snapshot.cgroup, &lossy)));
  }
  if (snapshot.exeFileKey) {
    put(Key::kExeFileKey, Napi::String::New(env, *snapshot.exeFileKey));
    put(Key::kExeFileSize, number(static_cast<double>(snapshot.exeFileSize)));
  }
  bool anyStream = false;
  for (const auto& stream : snapshot.stdio) anyStream = anyStream || stream.has_value();
  if (anyStream) {
    Napi::Array stdio = Napi::Array::New(env, 3);
    for (uint32_t fd = 0; fd < 3; fd++) stdio.Set(fd, snapshot.stdio[fd] ? StdStreamToJs(env, keys, *snapshot.stdio[fd]) : env.Null());
    put(Key::kStdio, stdio);
  }
  return out;
}

std::vector<std::string> StringList(Napi::Value value) {
  std::vector<std::string> list;
  if (!value.IsArray()) return list;
  Napi::Array array = value.As<Napi::Array>();
  for (uint32_t i = 0; i < array.Length(); i++) {
    Napi::Value item = array.Get(i);
    if (item.IsString()) list.push_back(item.As<Napi::String>().Utf8Value());
  }
  return list;
}

namespace {

class ScanWorker : public Napi::AsyncWorker {
 public:
  ScanWorker(Napi::Env env, std::string procRoot, size_t maxArgsBytes, std::vector<int32_t> pids, bool allPids,
             std::vector<std::string> envVarNames, bool exeFileKey, bool withoutPidfdGetfd)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        procRoot_(std::move(procRoot)),
        maxArgsBytes_(maxArgsBytes),
        pids_(std::move(pids)),
        allPids_(allPids),
        envVarNames_(std::move(envVarNames)),
        exeFileKey_(exeFileKey),
        withoutPidfdGetfd_(withoutPidfdGetfd) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    if (allPids_) pids_ = ListPids(procRoot_);
    snapshots_.reserve(pids_.size());
    for (int32_t pid : pids_) {
      SnapshotRequest request;
      request.procRoot = procRoot_;
      request.pid = pid;
      request.maxArgsBytes = maxArgsBytes_;
      request.envVarNames = &envVarNames_;
      request.exeFileKey = exeFileKey_;
      request.withoutPidfdGetfd = withoutPidfdGetfd_;
      Snapshot snapshot = TakeSnapshot(request);
      // A pid listed but gone before its stat was read is simply no longer a process.
      if (snapshot.stat) snapshots_.push_back(std::move(snapshot));
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    const Keys keys(env);
    Napi::Array result = Napi::Array::New(env, snapshots_.size());
    for (size_t i = 0; i < snapshots_.size(); i++) result.Set(static_cast<uint32_t>(i), SnapshotToJs(env, keys, snapshots_[i]));
    deferred_.Resolve(result);
  }

  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::string procRoot_;
  size_t maxArgsBytes_;
  std::vector<int32_t> pids_;
  bool allPids_;
  std::vector<std::string> envVarNames_;
  bool exeFileKey_;
  bool withoutPidfdGetfd_;
  std::vector<Snapshot> snapshots_;
};

// scanProcesses(procRoot, maxArgsBytes, pids?, { envVarNames?, exeFileKey?, withoutPidfdGetfd? }?) →
// Promise<Snapshot[]>: every pid of procRoot, or the given ones.
Napi::Value ScanProcesses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "scanProcesses(procRoot, maxArgsBytes, pids?, extras?)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::vector<int32_t> pids;
  bool allPids = true;
  if (info.Length() >= 3 && info[2].IsArray()) {
    allPids = false;
    Napi::Array list = info[2].As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); i++) pids.push_back(list.Get(i).As<Napi::Number>().Int32Value());
  }
  std::vector<std::string> envVarNames;
  bool exeFileKey = false, withoutPidfdGetfd = false;
  if (info.Length() >= 4 && info[3].IsObject()) {
    Napi::Object extras = info[3].As<Napi::Object>();
    envVarNames = StringList(extras.Get("envVarNames"));
    exeFileKey = extras.Get("exeFileKey").ToBoolean().Value();
    withoutPidfdGetfd = extras.Get("withoutPidfdGetfd").ToBoolean().Value();
  }
  double maxArgs = info[1].As<Napi::Number>().DoubleValue();
  auto* worker = new ScanWorker(env, info[0].As<Napi::String>().Utf8Value(), maxArgs > 0 ? static_cast<size_t>(maxArgs) : 0,
                                std::move(pids), allPids, std::move(envVarNames), exeFileKey, withoutPidfdGetfd);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

double NowMs(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// The connector stamps records with CLOCK_MONOTONIC; /proc start times count CLOCK_BOOTTIME ticks.
// Offsets to CLOCK_REALTIME, each read between two realtime samples to halve the error.
Napi::Value ClockOffsets(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto offset = [](clockid_t clock) {
    double before = NowMs(CLOCK_REALTIME);
    double other = NowMs(clock);
    double after = NowMs(CLOCK_REALTIME);
    return (before + after) / 2 - other;
  };
  Napi::Object out = Napi::Object::New(env);
  out.Set("realtimeMinusMonotonicMs", Napi::Number::New(env, offset(CLOCK_MONOTONIC)));
  out.Set("realtimeMinusBoottimeMs", Napi::Number::New(env, offset(CLOCK_BOOTTIME)));
  out.Set("nanosPerTick", Napi::Number::New(env, static_cast<double>(NanosPerTick())));
  return out;
}

// socketCopyStats() → { skipped, slowCloses }: procfs.h SocketCopyStats.
Napi::Value SocketCopyCountersToJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const SocketCopyCounters counters = SocketCopyStats();
  Napi::Object out = Napi::Object::New(env);
  out.Set("skipped", Napi::Number::New(env, static_cast<double>(counters.skipped)));
  out.Set("slowCloses", Napi::Number::New(env, static_cast<double>(counters.slowCloses)));
  return out;
}

}  // namespace

void InitProcfs(Napi::Env env, Napi::Object exports) {
  exports.Set("scanProcesses", Napi::Function::New(env, ScanProcesses, "scanProcesses"));
  exports.Set("clockOffsets", Napi::Function::New(env, ClockOffsets, "clockOffsets"));
  exports.Set("socketCopyStats", Napi::Function::New(env, SocketCopyCountersToJs, "socketCopyStats"));
}

}  // namespace execsentry
