// Reading one process out of /proc without ever mixing two processes: the snapshot the reader thread takes
// of an exec'd pid, and the parsers it is built from (stat, status, cmdline). Plain C++ (no N-API) so the
// reader thread can use it; procfs_js.cc turns a snapshot into a JavaScript object.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace execsentry {

// The fields of /proc/<pid>/stat the sensor needs. Parsed after the LAST ')' because comm (between the
// first '(' and that last ')') may hold spaces, parentheses and newlines.
struct ProcStat {
  std::string comm;
  char state = '?';
  int64_t ppid = 0;
  int64_t pgid = 0;
  int64_t sid = 0;
  int64_t ttyNr = 0;
  uint64_t flags = 0;
  uint64_t startTicks = 0;  // field 22: clock ticks since boot
};
std::optional<ProcStat> ParseProcStat(std::string_view text);

// Real, effective, saved ids and capability masks (hex, as /proc/<pid>/status prints them), parsed from
// status.
struct ProcStatus {
  bool hasUid = false, hasGid = false;
  uint32_t uid[3] = {0, 0, 0};  // real, effective, saved
  uint32_t gid[3] = {0, 0, 0};
  std::string capEff, capPrm;
  // Supplemental group ids (the Groups: line; empty when the process has none).
  bool hasGroups = false;
  std::vector<uint32_t> groups;
};
ProcStatus ParseProcStatus(std::string_view text);

// argv from /proc/<pid>/cmdline: NUL-separated, at most maxBytes kept (cut at a character boundary),
// bytes that are not UTF-8 replaced by U+FFFD.
struct DecodedArgs {
  std::vector<std::string> args;
  // When lossy: the kept bytes of every argument, so that two argvs differing only in bytes that were
  // replaced can still be told apart.
  std::vector<std::string> bytes;
  bool truncated = false;
  bool lossy = false;
};
DecodedArgs DecodeCmdline(std::string_view bytes, size_t maxBytes);

// Valid UTF-8 out of arbitrary bytes: each maximal invalid subsequence becomes one U+FFFD. Sets *lossy
// when anything was replaced.
std::string ToUtf8Lossy(std::string_view bytes, bool* lossy);

// A character device as (major, minor).
struct DeviceId {
  int64_t major = -1;
  int64_t minor = -1;
};

// What one standard stream (fd 0, 1 or 2) of a process refers to, from its /proc/<pid>/fd link.
struct StdStream {
  enum class Type { kClosed, kPipe, kSocket, kFile, kCharDevice, kOther };
  Type type = Type::kClosed;
  // The fd link's text for a file or a character device other than /dev/null, as UTF-8.
  std::string path;
  DeviceId device;  // kCharDevice
  // kSocket: its inode (the same socket on two fds is described once), the protocol sockfs names it by (its
  // system.sockprotoname: "TCP", "UDPv6", "UNIX-STREAM", "NETLINK", ...) and, for an IP socket, both ends
  // (getsockname/getpeername of a pidfd_getfd copy; empty / -1 when refused, or when there is no remote end).
  uint64_t socketInode = 0;
  std::string protocol;
  std::string localIp, remoteIp;
  int32_t localPort = -1, remotePort = -1;
};

struct Snapshot {
  int32_t pid = 0;
  // Some file could not be read because the process exited (or turned zombie) first, or the pid now belongs
  // to a different process: the fields below that are unset are unknown, never guessed.
  bool partial = false;
  // The process was leaving when it was read (PF_EXITING, zombie, dead) or already reaped: what is missing
  // vanished with it.
  bool exited = false;
  // Some file was refused (EACCES/EPERM: no CAP_SYS_PTRACE over that process), not missing.
  bool denied = false;
  // The pid holds another process than the one the kernel record was about (started after that record).
  bool reused = false;
  bool kernelThread = false;
  std::optional<ProcStat> stat;
  std::optional<ProcStatus> status;
  // Supplemental group ids from /proc/<pid>/status.
  std::optional<std::vector<uint32_t>> groups;
  std::optional<std::string> executable, cwd;
  // The link's bytes, only for a path that was not UTF-8 (see DecodedArgs::bytes).
  std::optional<std::string> executableBytes, cwdBytes;
  std::optional<DecodedArgs> args;
  bool pathsLossy = false;
  // fd 0, 1 and 2; unset = unknown (unreadable, or the process was leaving: never taken for "closed").
  std::optional<StdStream> stdio[3];
  // The environ entries ("NAME=value") of the requested names, in environ order; the names whose value
  // was over kMaxEnvVarValueBytes, once each (src/sensor/env-vars.ts says why).
  std::vector<std::string> envVars, envVarsOversized;
  // environ was longer than the part read (procfs.cc kMaxEnvironBytes): a configured variable may be beyond it.
  bool envVarsTruncated = false;
  // /proc/<pid>/cgroup as read (src/sensor/container.ts parses it).
  std::optional<std::string> cgroup;
  // The exec'd file (stat through the exe link): "dev:ino:size:mtimeNs:ctimeNs" in hex, only when asked
  // for (process hashes), with its size.
  std::optional<std::string> exeFileKey;
  uint64_t exeFileSize = 0;
  // A socket stream is without its ends because no copy could be taken: the closer of copies was full or
  // stuck (procfs.cc CopyCloser).
  bool socketEndsSkipped = false;
};

// Elastic Defend's limit on a captured environment variable's value (longer ones are left out).
constexpr size_t kMaxEnvVarValueBytes = 1023;

struct SnapshotRequest {
  std::string procRoot = "/proc";
  int32_t pid = 0;
  size_t maxArgsBytes = 64 * 1024;
  // When set: the process must have started at or before this boot-clock instant (the kernel record's
  // time); a later start means the pid was reused, and nothing of that other process is kept.
  std::optional<uint64_t> notStartedAfterBoottimeNs;
  // Never copy a standard stream's socket with pidfd_getfd, as on a kernel before 5.6 that lacks it (tests of
  // that path): a socket stream then has its protocol, not its ends.
  bool withoutPidfdGetfd = false;
  // Environment variables to capture (process.env_vars); environ is read only when there are some. Owned
  // by the caller, alive for the call.
  const std::vector<std::string>* envVarNames = nullptr;
  // stat() the exec'd file for the hash cache's key.
  bool exeFileKey = false;
};
Snapshot TakeSnapshot(const SnapshotRequest& request);

// The supplemental groups of the process holding `pid` now, if it started at or before the boot-clock
// instant `notStartedAfterBoottimeNs` (else the pid was reused: nothing). For uid/gid change records:
// setgroups() has no record of its own, and a login sets its groups just before its ids.
std::optional<std::vector<uint32_t>> ReadGroups(const std::string& procRoot, int32_t pid, uint64_t notStartedAfterBoottimeNs);

// Every numeric entry of procRoot (the pids alive at this moment).
std::vector<int32_t> ListPids(const std::string& procRoot);

// The pidfd_getfd copies of sockets, process-wide: streams left without their ends because the closer of
// copies was full or stuck, and closes that took it over 100 ms (a lingering socket whose process had
// dropped its own fd).
struct SocketCopyCounters {
  uint64_t skipped = 0;
  uint64_t slowCloses = 0;
};
SocketCopyCounters SocketCopyStats();

// Nanoseconds in one clock tick (sysconf(_SC_CLK_TCK)).
uint64_t NanosPerTick();

}  // namespace execsentry
