// The execsentry addon's module entry: only what must be native. Each native part exports its functions
// from its own file; this file only assembles them. Context-aware (NAPI_MODULE_INIT), so it loads in
// worker threads too.
#include <napi.h>

namespace execsentry {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abiVersion", Napi::Number::New(env, 1));
  return exports;
}

}  // namespace execsentry

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return execsentry::Init(env, exports); }

NODE_API_MODULE(execsentry, InitModule)
