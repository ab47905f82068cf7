// The execsentry addon's module entry: only what must be native. Each part exports its functions from its
// own file (declared in parts.h); this file only assembles them. Context-aware (NAPI_MODULE_INIT through
// node-addon-api), so it loads in worker threads too.
#include <napi.h>

#include "parts.h"

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  execsentry::InitFileLock(env, exports);
  execsentry::InitUnixDatagram(env, exports);
  execsentry::InitConnector(env, exports);
  execsentry::InitProcfs(env, exports);
  execsentry::InitNss(env, exports);
  return exports;
}

NODE_API_MODULE(execsentry, InitModule)
