// The JavaScript face of procfs.cc: the snapshot as JSON, scanProcesses() (a whole /proc walk on a worker
// thread, never on the JS thread) and the clock offsets used to turn kernel times into wall-clock times.
#include <time.h>

#include <cstdio>
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

// JSON text, appended. Strings are UTF-8 already (ToUtf8Lossy made them so; the raw bytes of a lossy path
// or argument go as base64): only quotes, backslashes and control characters need escaping.
class Json {
 public:
  explicit Json(std::string* out) : out_(*out) {}

  void Begin() { out_ += '{', first_ = true; }
  void End() { out_ += '}', first_ = false; }

  Json& Key(const char* key) {
    if (!first_) out_ += ',';
    first_ = false;
    out_ += '"', out_ += key, out_ += "\":";
    return *this;
  }

  void String(std::string_view text) {
    out_ += '"';
    for (char c : text) {
      const auto byte = static_cast<unsigned char>(c);
      if (byte == '"' || byte == '\\') {
        out_ += '\\', out_ += c;
      } else if (byte < 0x20) {
        char escape[7];
        std::snprintf(escape, sizeof escape, "\\u%04x", byte);
        out_ += escape;
      } else {
        out_ += c;
      }
    }
    out_ += '"';
  }

  void Base64(std::string_view bytes) {
    static constexpr char kDigits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    out_ += '"';
    size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
      const uint32_t n = (static_cast<uint8_t>(bytes[i]) << 16) | (static_cast<uint8_t>(bytes[i + 1]) << 8) | static_cast<uint8_t>(bytes[i + 2]);
      out_ += kDigits[n >> 18], out_ += kDigits[(n >> 12) & 63], out_ += kDigits[(n >> 6) & 63], out_ += kDigits[n & 63];
    }
    if (i < bytes.size()) {
      const bool two = i + 1 < bytes.size();
      const uint32_t n = (static_cast<uint8_t>(bytes[i]) << 16) | (two ? static_cast<uint8_t>(bytes[i + 1]) << 8 : 0);
      out_ += kDigits[n >> 18], out_ += kDigits[(n >> 12) & 63];
      out_ += two ? kDigits[(n >> 6) & 63] : '=';
      out_ += '=';
    }
    out_ += '"';
  }

  void Number(int64_t value) { out_ += std::to_string(value); }
  void Unsigned(uint64_t value) { out_ += std::to_string(value); }
  void True() { out_ += "true"; }
  void Bool(bool value) { out_ += value ? "true" : "false"; }
  void Null() { out_ += "null"; }

  template <typename T, typename Each>
  void Array(const std::vector<T>& items, Each each) {
    out_ += '[';
    for (size_t i = 0; i < items.size(); i++) {
      if (i > 0) out_ += ',';
      each(items[i]);
    }
    out_ += ']';
  }

 private:
  std::string& out_;
  bool first_ = true;
};

void StdStreamJson(const StdStream& stream, std::string* out) {
  Json json(out);
  json.Begin();
  json.Key("type").String(StdStreamTypeName(stream.type));
  if (!stream.path.empty()) json.Key("path").String(stream.path);
  if (stream.type == StdStream::Type::kCharDevice) {
    json.Key("device");
    *out += '[' + std::to_string(stream.device.major) + ',' + std::to_string(stream.device.minor) + ']';
  }
  bool lossy = false;
  if (!stream.protocol.empty()) json.Key("protocol").String(ToUtf8Lossy(stream.protocol, &lossy));
  if (!stream.localIp.empty()) json.Key("localIp").String(stream.localIp);
  if (stream.localPort >= 0) json.Key("localPort").Number(stream.localPort);
  if (!stream.remoteIp.empty()) json.Key("remoteIp").String(stream.remoteIp);
  if (stream.remotePort >= 0) json.Key("remotePort").Number(stream.remotePort);
  json.End();
}

}  // namespace

void GroupsJson(const std::vector<uint32_t>& groups, std::string* out) {
  Json(out).Array(groups, [&](uint32_t id) { *out += std::to_string(id); });
}

void SnapshotJson(const Snapshot& snapshot, std::string* out) {
  Json json(out);
  const auto strings = [&](const char* key, const std::vector<std::string>& list) {
    if (list.empty()) return;
    json.Key(key).Array(list, [&](const std::string& item) { json.String(item); });
  };
  json.Begin();
  json.Key("pid").Number(snapshot.pid);
  json.Key("partial").Bool(snapshot.partial);
  if (snapshot.exited) json.Key("exited").True();
  if (snapshot.denied) json.Key("denied").True();
  if (snapshot.reused) json.Key("reused").True();
  if (snapshot.kernelThread) json.Key("kernelThread").True();
  if (snapshot.stat) {
    const ProcStat& stat = *snapshot.stat;
    bool commLossy = false;
    json.Key("comm").String(ToUtf8Lossy(stat.comm, &commLossy));
    json.Key("startTicks").Unsigned(stat.startTicks);
    json.Key("ppid").Number(stat.ppid);
    json.Key("pgid").Number(stat.pgid);
    json.Key("sid").Number(stat.sid);
    json.Key("ttyNr").Number(stat.ttyNr);
  }
  if (snapshot.status) {
    const ProcStatus& status = *snapshot.status;
    const std::vector<uint32_t> uids(status.uid, status.uid + 3), gids(status.gid, status.gid + 3);
    json.Key("uids").Array(uids, [&](uint32_t id) { json.Unsigned(id); });
    json.Key("gids").Array(gids, [&](uint32_t id) { json.Unsigned(id); });
    if (!status.capEff.empty()) json.Key("capEff").String(status.capEff);
    if (!status.capPrm.empty()) json.Key("capPrm").String(status.capPrm);
  }
  if (snapshot.groups) json.Key("groups").Array(*snapshot.groups, [&](uint32_t id) { json.Unsigned(id); });
  if (snapshot.executable) json.Key("executable").String(*snapshot.executable);
  if (snapshot.executableBytes) json.Key("executableBytes").Base64(*snapshot.executableBytes);
  if (snapshot.cwd) json.Key("cwd").String(*snapshot.cwd);
  if (snapshot.cwdBytes) json.Key("cwdBytes").Base64(*snapshot.cwdBytes);
  if (snapshot.pathsLossy) json.Key("pathsLossy").True();
  if (snapshot.args) {
    const DecodedArgs& decoded = *snapshot.args;
    json.Key("args").Array(decoded.args, [&](const std::string& arg) { json.String(arg); });
    if (decoded.truncated) json.Key("argsTruncated").True();
    if (decoded.lossy) {
      json.Key("argsLossy").True();
      json.Key("argsBytes").Array(decoded.bytes, [&](const std::string& bytes) { json.Base64(bytes); });
    }
  }
  strings("envVars", snapshot.envVars);
  strings("envVarsOversized", snapshot.envVarsOversized);
  if (snapshot.envVarsTruncated) json.Key("envVarsTruncated").True();
  if (snapshot.cgroup) {
    bool lossy = false;
    json.Key("cgroup").String(ToUtf8Lossy(*snapshot.cgroup, &lossy));
  }
  if (snapshot.exeFileKey) {
    json.Key("exeFileKey").String(*snapshot.exeFileKey);
    json.Key("exeFileSize").Unsigned(snapshot.exeFileSize);
  }
  bool anyStream = false;
  for (const auto& stream : snapshot.stdio) anyStream = anyStream || stream.has_value();
  if (anyStream) {
    json.Key("stdio");
    *out += '[';
    for (int fd = 0; fd < 3; fd++) {
      if (fd > 0) *out += ',';
      if (snapshot.stdio[fd]) StdStreamJson(*snapshot.stdio[fd], out);
      else *out += "null";
    }
    *out += ']';
  }
  json.End();
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

constexpr size_t kScanChunkBytes = 4 * 1024 * 1024;

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
    // In chunks: all of /proc in one string could pass V8's longest string (2^29 characters: some 8,000
    // processes with 64 KiB command lines).
    Napi::Env env = Env();
    try {
      Napi::Array chunks = Napi::Array::New(env);
      std::string json;
      uint32_t count = 0;
      for (size_t i = 0; i < snapshots_.size(); i++) {
        json += json.empty() ? '[' : ',';
        SnapshotJson(snapshots_[i], &json);
        if (json.size() >= kScanChunkBytes || i + 1 == snapshots_.size()) {
          json += ']';
          chunks.Set(count++, Napi::String::New(env, json));
          json.clear();
        }
      }
      deferred_.Resolve(chunks);
    } catch (const Napi::Error& error) {
      deferred_.Reject(error.Value());
    }
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
// Promise<string[]>: the snapshots of every pid of procRoot, or of the given ones, as JSON arrays.
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
