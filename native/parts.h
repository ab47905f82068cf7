// Each native part of the addon registers its exports through one Init function declared here.
#pragma once
#include <napi.h>

namespace execsentry {

// flock(2) on a file descriptor opened by JavaScript (state-directory lock).
void InitFileLock(Napi::Env env, Napi::Object exports);
// Unix datagram sends: sd_notify(3) to $NOTIFY_SOCKET and syslog to /dev/log, abstract namespace included.
void InitUnixDatagram(Napi::Env env, Napi::Object exports);
// The netlink process connector on a reader thread (class ProcessConnector).
void InitConnector(Napi::Env env, Napi::Object exports);
// /proc snapshots on a worker thread (scanProcesses) and clock offsets (clockOffsets).
void InitProcfs(Napi::Env env, Napi::Object exports);
// NSS user and group names on a worker thread (lookUpUserNames, lookUpGroupNames).
void InitNss(Napi::Env env, Napi::Object exports);

}  // namespace execsentry
