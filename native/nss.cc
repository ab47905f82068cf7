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

// One NSS entry: its name, and for a user the login shell of the passwd entry (pw_shell).
struct Entry {
  std::string name;
  std::string shell;
};

// The entry of one id; nullopt when NSS knows no such id (or fails: an unknown id then keeps no name).
std::optional<Entry> LookUp(Database database, uint32_t id) {
  std::vector<char> buffer(1024);
  for (;;) {
    int error;
    std::optional<Entry> found;
    if (database == Database::kUsers) {
      struct passwd entry;
      struct passwd* result = nullptr;
      error = getpwuid_r(id, &entry, buffer.data(), buffer.size(), &result);
      if (error == 0 && result != nullptr) found = Entry{result->pw_name, result->pw_shell != nullptr ? result->pw_shell : ""};
    } else {
      struct group entry;
      struct group* result = nullptr;
      error = getgrgid_r(id, &entry, buffer.data(), buffer.size(), &result);
      if (error == 0 && result != nullptr) found = Entry{result->gr_name, ""};
    }
    if (error == ERANGE && buffer.size() < (1u << 20)) {
      buffer.resize(buffer.size() * 4);
      continue;
    }
    if (error == EINTR) continue;
    return found;
  }
}

// What each look-up resolves to: the names alone, or users' names and shells.
enum class Answer { kNames, kUsers };

class NameWorker : public Napi::AsyncWorker {
 public:
  NameWorker(Napi::Env env, Database database, Answer answer, std::vector<uint32_t> ids)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), database_(database), answer_(answer), ids_(std::move(ids)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    entries_.reserve(ids_.size());
    for (uint32_t id : ids_) entries_.push_back(LookUp(database_, id));
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Array result = Napi::Array::New(env, entries_.size());
    for (size_t i = 0; i < entries_.size(); i++) {
      // Names come from NSS sources an attacker may write to; non-UTF-8 bytes are replaced, never trusted.
      const std::optional<Entry>& entry = entries_[i];
      Napi::Value value = env.Null();
      if (entry && answer_ == Answer::kNames) {
        value = Napi::String::New(env, entry->name);
      } else if (entry) {
        Napi::Object user = Napi::Object::New(env);
        user.Set("name", Napi::String::New(env, entry->name));
        user.Set("shell", Napi::String::New(env, entry->shell));
        value = user;
      }
      result.Set(static_cast<uint32_t>(i), value);
    }
    deferred_.Resolve(result);
  }

  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Database database_;
  Answer answer_;
  std::vector<uint32_t> ids_;
  std::vector<std::optional<Entry>> entries_;
};

Napi::Value StartLookUp(const Napi::CallbackInfo& info, Database database, Answer answer, const char* usage) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) {
    Napi::TypeError::New(env, usage).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array list = info[0].As<Napi::Array>();
  std::vector<uint32_t> ids;
  ids.reserve(list.Length());
  for (uint32_t i = 0; i < list.Length(); i++) ids.push_back(list.Get(i).As<Napi::Number>().Uint32Value());
  auto* worker = new NameWorker(env, database, answer, std::move(ids));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value LookUpUserNames(const Napi::CallbackInfo& info) {
  return StartLookUp(info, Database::kUsers, Answer::kNames, "lookUpUserNames(uids: number[])");
}

Napi::Value LookUpUsers(const Napi::CallbackInfo& info) {
  return StartLookUp(info, Database::kUsers, Answer::kUsers, "lookUpUsers(uids: number[])");
}

Napi::Value LookUpGroupNames(const Napi::CallbackInfo& info) {
  return StartLookUp(info, Database::kGroups, Answer::kNames, "lookUpGroupNames(gids: number[])");
}

}  // namespace

void InitNss(Napi::Env env, Napi::Object exports) {
  exports.Set("lookUpUserNames", Napi::Function::New(env, LookUpUserNames, "lookUpUserNames"));
  exports.Set("lookUpUsers", Napi::Function::New(env, LookUpUsers, "lookUpUsers"));
  exports.Set("lookUpGroupNames", Napi::Function::New(env, LookUpGroupNames, "lookUpGroupNames"));
}

}  // namespace execsentry
