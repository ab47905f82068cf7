// Property names of the snapshot objects the addon hands to JavaScript, made once per environment and each
// looked up at most once per batch: making a V8 string from a C string for every property of every snapshot
// cost more than the rest of the hand-over. (Node-API 8 keeps references to objects only, so the
// names live in an array held by reference.)
#pragma once
#include <napi.h>

namespace execsentry {

enum class Key : unsigned {
  kPid, kStartTicks, kPartial, kExited, kDenied, kReused, kKernelThread, kComm, kPpid, kPgid, kSid, kTtyNr, kUids,
  kGids, kCapEff, kCapPrm, kExecutable, kExecutableBytes, kCwd, kCwdBytes, kPathsLossy, kArgs, kArgsTruncated,
  kArgsLossy, kArgsBytes, kStdio, kType, kPath, kDevice, kProtocol, kLocalIp, kLocalPort, kRemoteIp, kRemotePort,
  kEnvVars, kEnvVarsOversized, kEnvVarsTruncated, kCgroup, kExeFileKey, kExeFileSize, kGroups,
  kCount,
};

// The names, valid in the current handle scope.
class Keys {
 public:
  explicit Keys(Napi::Env env);
  // object[key] = value.
  void Put(napi_value object, Key key, napi_value value) const;

 private:
  Napi::Env env_;
  napi_value array_;
  mutable napi_value names_[static_cast<size_t>(Key::kCount)] = {};
};

}  // namespace execsentry
