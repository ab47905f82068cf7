#include "js_keys.h"

namespace execsentry {

namespace {

// In the order of enum Key.
constexpr const char* kNames[] = {
    "kind", "code", "timeNs", "pid", "parentPid", "startTicks", "effectiveId", "realId",
    "snapshot", "partial", "exited", "denied", "reused", "kernelThread", "comm", "ppid", "pgid", "sid", "ttyNr", "uids",
    "gids", "capEff", "capPrm", "executable", "executableBytes", "cwd", "cwdBytes", "pathsLossy", "args", "argsTruncated",
    "argsLossy", "argsBytes", "stdio", "type", "path", "device", "protocol", "localIp", "localPort", "remoteIp", "remotePort",
    "envVars", "envVarsOversized", "envVarsTruncated", "cgroup", "exeFileKey", "exeFileSize", "exitStatus", "groups",
};
constexpr size_t kCount = static_cast<size_t>(Key::kCount);
static_assert(sizeof kNames / sizeof kNames[0] == kCount, "a name for every Key");

struct KeyCache {
  Napi::Reference<Napi::Array> names;
};

}  // namespace

Keys::Keys(Napi::Env env) : env_(env) {
  auto* cache = env.GetInstanceData<KeyCache>();
  if (cache == nullptr) {
    Napi::Array names = Napi::Array::New(env, kCount);
    for (size_t i = 0; i < kCount; i++) names.Set(static_cast<uint32_t>(i), Napi::String::New(env, kNames[i]));
    cache = new KeyCache{Napi::Persistent(names)};
    env.SetInstanceData(cache);  // deleted with the environment
  }
  napi_value array = cache->names.Value();
  for (size_t i = 0; i < kCount; i++) {
    napi_status status = napi_get_element(env, array, static_cast<uint32_t>(i), &names_[i]);
    NAPI_THROW_IF_FAILED_VOID(env, status);
  }
}

void Keys::Put(napi_value object, Key key, napi_value value) const {
  napi_status status = napi_set_property(env_, object, names_[static_cast<size_t>(key)], value);
  NAPI_THROW_IF_FAILED_VOID(env_, status);
}

}  // namespace execsentry
