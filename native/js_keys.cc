#include "js_keys.h"

namespace execsentry {

namespace {

// In the order of enum Key.
constexpr const char* kNames[] = {
    "pid", "startTicks", "partial", "exited", "denied", "reused", "kernelThread", "comm", "ppid", "pgid", "sid", "ttyNr", "uids",
    "gids", "capEff", "capPrm", "executable", "executableBytes", "cwd", "cwdBytes", "pathsLossy", "args", "argsTruncated",
    "argsLossy", "argsBytes", "stdio", "type", "path", "device", "protocol", "localIp", "localPort", "remoteIp", "remotePort",
    "envVars", "envVarsOversized", "envVarsTruncated", "cgroup", "exeFileKey", "exeFileSize", "groups",
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
  array_ = cache->names.Value();
}

void Keys::Put(napi_value object, Key key, napi_value value) const {
  // Looked up at first use: most batches hand over a few fork and exit records and no snapshot.
  napi_value& name = names_[static_cast<size_t>(key)];
  if (name == nullptr) {
    napi_status status = napi_get_element(env_, array_, static_cast<uint32_t>(key), &name);
    NAPI_THROW_IF_FAILED_VOID(env_, status);
  }
  napi_status status = napi_set_property(env_, object, name, value);
  NAPI_THROW_IF_FAILED_VOID(env_, status);
}

}  // namespace execsentry
