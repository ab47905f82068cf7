// The JavaScript face of procfs.cc: the snapshot object, scanProcesses() (a whole /proc walk on a worker
// thread, never on the JS thread) and the clock offsets used to turn kernel times into wall-clock times.
#include <time.h>

#include <memory>
#include <string>
#include <vector>

#include "parts.h"
#include "procfs_js.h"

namespace execsentry {

Napi::Object SnapshotToJs(Napi::Env env, const Snapshot& snapshot) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, snapshot.pid));
  out.Set("partial", Napi::Boolean::New(env, snapshot.partial));
  if (snapshot.reused) out.Set("reused", Napi::Boolean::New(env, true));
  if (snapshot.kernelThread) out.Set("kernelThread", Napi::Boolean::New(env, true));
  if (snapshot.stat) {
    const ProcStat& stat = *snapshot.stat;
    bool commLossy = false;
    out.Set("comm", Napi::String::New(env, ToUtf8Lossy(stat.comm, &commLossy)));
    out.Set("startTicks", Napi::Number::New(env, static_cast<double>(stat.startTicks)));
    out.Set("ppid", Napi::Number::New(env, static_cast<double>(stat.ppid)));
    out.Set("pgid", Napi::Number::New(env, static_cast<double>(stat.pgid)));
    out.Set("sid", Napi::Number::New(env, static_cast<double>(stat.sid)));
    out.Set("ttyNr", Napi::Number::New(env, static_cast<double>(stat.ttyNr)));
  }
  if (snapshot.status) {
    const ProcStatus& status = *snapshot.status;
    Napi::Array uids = Napi::Array::New(env, 3), gids = Napi::Array::New(env, 3);
    for (uint32_t i = 0; i < 3; i++) {
      uids.Set(i, Napi::Number::New(env, status.uid[i]));
      gids.Set(i, Napi::Number::New(env, status.gid[i]));
    }
    out.Set("uids", uids);
    out.Set("gids", gids);
    if (!status.capEff.empty()) out.Set("capEff", Napi::String::New(env, status.capEff));
    if (!status.capPrm.empty()) out.Set("capPrm", Napi::String::New(env, status.capPrm));
  }
  const auto bytes = [&](const std::string& raw) { return Napi::Buffer<char>::Copy(env, raw.data(), raw.size()); };
  if (snapshot.executable) out.Set("executable", Napi::String::New(env, *snapshot.executable));
  if (snapshot.executableBytes) out.Set("executableBytes", bytes(*snapshot.executableBytes));
  if (snapshot.cwd) out.Set("cwd", Napi::String::New(env, *snapshot.cwd));
  if (snapshot.cwdBytes) out.Set("cwdBytes", bytes(*snapshot.cwdBytes));
  if (snapshot.pathsLossy) out.Set("pathsLossy", Napi::Boolean::New(env, true));
  if (snapshot.args) {
    const DecodedArgs& decoded = *snapshot.args;
    Napi::Array args = Napi::Array::New(env, decoded.args.size());
    for (size_t i = 0; i < decoded.args.size(); i++) args.Set(static_cast<uint32_t>(i), Napi::String::New(env, decoded.args[i]));
    out.Set("args", args);
    if (decoded.truncated) out.Set("argsTruncated", Napi::Boolean::New(env, true));
    if (decoded.lossy) {
      out.Set("argsLossy", Napi::Boolean::New(env, true));
      Napi::Array argsBytes = Napi::Array::New(env, decoded.bytes.size());
      for (size_t i = 0; i < decoded.bytes.size(); i++) argsBytes.Set(static_cast<uint32_t>(i), bytes(decoded.bytes[i]));
      out.Set("argsBytes", argsBytes);
    }
  }
  const auto device = [&](const char* key, const std::optional<DeviceId>& id) {
    if (!id) return;
    Napi::Array pair = Napi::Array::New(env, 2);
    pair.Set(0u, Napi::Number::New(env, static_cast<double>(id->major)));
    pair.Set(1u, Napi::Number::New(env, static_cast<double>(id->minor)));
    out.Set(key, pair);
  };
  device("fd0", snapshot.fd0);
  device("fd2", snapshot.fd2);
  return out;
}

namespace {

class ScanWorker : public Napi::AsyncWorker {
 public:
  ScanWorker(Napi::Env env, std::string procRoot, size_t maxArgsBytes, std::vector<int32_t> pids, bool allPids)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        procRoot_(std::move(procRoot)),
        maxArgsBytes_(maxArgsBytes),
        pids_(std::move(pids)),
        allPids_(allPids) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    if (allPids_) pids_ = ListPids(procRoot_);
    snapshots_.reserve(pids_.size());
    for (int32_t pid : pids_) {
      SnapshotRequest request;
      request.procRoot = procRoot_;
      request.pid = pid;
      request.maxArgsBytes = maxArgsBytes_;
      Snapshot snapshot = TakeSnapshot(request);
      // A pid listed but gone before its stat was read is simply no longer a process.
      if (snapshot.stat) snapshots_.push_back(std::move(snapshot));
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Array result = Napi::Array::New(env, snapshots_.size());
    for (size_t i = 0; i < snapshots_.size(); i++) result.Set(static_cast<uint32_t>(i), SnapshotToJs(env, snapshots_[i]));
    deferred_.Resolve(result);
  }

  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::string procRoot_;
  size_t maxArgsBytes_;
  std::vector<int32_t> pids_;
  bool allPids_;
  std::vector<Snapshot> snapshots_;
};

// scanProcesses(procRoot, maxArgsBytes, pids?) → Promise<Snapshot[]>: every pid of procRoot, or the given ones.
Napi::Value ScanProcesses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "scanProcesses(procRoot, maxArgsBytes, pids?)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::vector<int32_t> pids;
  bool allPids = true;
  if (info.Length() >= 3 && info[2].IsArray()) {
    allPids = false;
    Napi::Array list = info[2].As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); i++) pids.push_back(list.Get(i).As<Napi::Number>().Int32Value());
  }
  double maxArgs = info[1].As<Napi::Number>().DoubleValue();
  auto* worker = new ScanWorker(env, info[0].As<Napi::String>().Utf8Value(), maxArgs > 0 ? static_cast<size_t>(maxArgs) : 0,
                                std::move(pids), allPids);
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

}  // namespace

void InitProcfs(Napi::Env env, Napi::Object exports) {
  exports.Set("scanProcesses", Napi::Function::New(env, ScanProcesses, "scanProcesses"));
  exports.Set("clockOffsets", Napi::Function::New(env, ClockOffsets, "clockOffsets"));
}

}  // namespace execsentry
