// flock(2) has no Node.js binding; the state directory's exclusive lock needs it. JavaScript opens the
// file (and writes the holder's pid); only the lock call itself is native.
#include <sys/file.h>

#include <cerrno>
#include <cstring>

#include "parts.h"

namespace execsentry {

namespace {

// tryLockExclusive(fd) -> true when the lock was taken, false when another open file description holds it.
Napi::Value TryLockExclusive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "tryLockExclusive(fd): fd must be a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const int fd = info[0].As<Napi::Number>().Int32Value();
  for (;;) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return Napi::Boolean::New(env, true);
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return Napi::Boolean::New(env, false);
    Napi::Error::New(env, std::string("flock: ") + std::strerror(errno)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

}  // namespace

void InitFileLock(Napi::Env env, Napi::Object exports) {
  exports.Set("tryLockExclusive", Napi::Function::New(env, TryLockExclusive, "tryLockExclusive"));
}

}  // namespace execsentry
