// User and group names through NSS (getpwuid_r / getgrgid_r), so LDAP and SSSD accounts resolve like local
// ones. A look-up may block on the network, so it runs on a libuv worker thread and JavaScript caches the
// answers (src/sensor/names.ts).
#include <grp.h>
#include <pwd.h>

#include <cerrno>
#include <optional>
#include <string>
#include <vector>

#include "parts.h"

namespace execsentry {

namespace {

enum class Database { kUsers, kGroups };

// The name of one id; nullopt when NSS knows no such id (or fails: an unknown id then keeps no name).
std::optional<std::string> LookUp(Database database, uint32_t id) {
  std::vector<char> buffer(1024);
  for (;;) {
    int error;
    const char* name = nullptr;
    if (database == Database::kUsers) {
      struct passwd entry;
      struct passwd* result = nullptr;
      error = getpwuid_r(id, &entry, buffer.data(), buffer.size(), &result);
      if (error == 0 && result != nullptr) name = result->pw_name;
    } else {
      struct group entry;
      struct group* result = nullptr;
      error = getgrgid_r(id, &entry, buffer.data(), buffer.size(), &result);
      if (error == 0 && result != nullptr) name = result->gr_name;
    }
    if (error == ERANGE && buffer.size() < (1u << 20)) {
      buffer.resize(buffer.size() * 4);
      continue;
    }
    if (error == EINTR) continue;
    if (name == nullptr) return std::nullopt;
    return std::string(name);
  }
}

class NameWorker : public Napi::AsyncWorker {
 public:
  NameWorker(Napi::Env env, Database database, std::vector<uint32_t> ids)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), database_(database), ids_(std::move(ids)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    names_.reserve(ids_.size());
    for (uint32_t id : ids_) names_.push_back(LookUp(database_, id));
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Array result = Napi::Array::New(env, names_.size());
    for (size_t i = 0; i < names_.size(); i++) {
      // Names come from NSS sources an attacker may write to; non-UTF-8 bytes are replaced, never trusted.
      result.Set(static_cast<uint32_t>(i), names_[i] ? Napi::Value(Napi::String::New(env, *names_[i])) : env.Null());
    }
    deferred_.Resolve(result);
  }

  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Database database_;
  std::vector<uint32_t> ids_;
  std::vector<std::optional<std::string>> names_;
};

Napi::Value StartLookUp(const Napi::CallbackInfo& info, Database database, const char* usage) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) {
    Napi::TypeError::New(env, usage).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array list = info[0].As<Napi::Array>();
  std::vector<uint32_t> ids;
  ids.reserve(list.Length());
  for (uint32_t i = 0; i < list.Length(); i++) ids.push_back(list.Get(i).As<Napi::Number>().Uint32Value());
  auto* worker = new NameWorker(env, database, std::move(ids));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value LookUpUserNames(const Napi::CallbackInfo& info) {
  return StartLookUp(info, Database::kUsers, "lookUpUserNames(uids: number[])");
}

Napi::Value LookUpGroupNames(const Napi::CallbackInfo& info) {
  return StartLookUp(info, Database::kGroups, "lookUpGroupNames(gids: number[])");
}

}  // namespace

void InitNss(Napi::Env env, Napi::Object exports) {
  exports.Set("lookUpUserNames", Napi::Function::New(env, LookUpUserNames, "lookUpUserNames"));
  exports.Set("lookUpGroupNames", Napi::Function::New(env, LookUpGroupNames, "lookUpGroupNames"));
}

}  // namespace execsentry
