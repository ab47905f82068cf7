// Each native part of the addon registers its exports through one Init function declared here.
#pragma once
#include <napi.h>

namespace execsentry {

// flock(2) on a file descriptor opened by JavaScript (state-directory lock).
void InitFileLock(Napi::Env env, Napi::Object exports);
// sd_notify(3) datagrams to $NOTIFY_SOCKET, abstract namespace included.
void InitSdNotify(Napi::Env env, Napi::Object exports);

}  // namespace execsentry
