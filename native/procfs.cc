// /proc parsing and the per-process snapshot. Every file is opened relative to one directory fd of
// /proc/<pid>: once that process is gone, the kernel answers ESRCH/ENOENT through the old fd instead of
// showing a newer process that got the same pid, so one snapshot can never mix two processes. The start
// time in its one stat read proves which process the directory is.
#include "procfs.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <condition_variable>
#include <mutex>
#include <system_error>
#include <thread>

namespace execsentry {

namespace {

constexpr uint64_t kKernelThreadFlag = 0x00200000;  // PF_KTHREAD in /proc/<pid>/stat field 9

// Reads at most maxBytes of a file relative to dirFd. Returns false (errno set) when it cannot be opened or read.
bool ReadFileAt(int dirFd, const char* name, size_t maxBytes, std::string* out) {
  out->clear();
  int fd = openat(dirFd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return false;
  // Straight into the result, in one read() for the common small file: a first chunk of a page or two,
  // then four times larger while the file fills it (a 40 KiB environ takes three reads, not ten; a 64 KiB
  // argv cap is not allocated and zeroed for every 30-byte command line).
  size_t capacity = std::min<size_t>(maxBytes, 8192);
  out->resize(capacity);
  size_t got = 0;
  while (got < maxBytes) {
    if (got == capacity) {
      capacity = std::min(maxBytes, capacity * 4);
      out->resize(capacity);
    }
    const size_t want = capacity - got;
    ssize_t n = read(fd, &(*out)[got], want);
    if (n < 0) {
      if (errno == EINTR) continue;
      int saved = errno;
      close(fd);
      out->clear();
      errno = saved;
      return false;
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
    // A short read is the end for the files read here (fs/proc/base.c proc_pid_cmdline_read and environ_read
    // loop over pages, and seq_read of single_open files fills what it is given): one read() per file, not two.
    if (static_cast<size_t>(n) < want) break;
  }
  out->resize(got);
  close(fd);
  return true;
}

bool ReadLinkAt(int dirFd, const char* name, std::string* out) {
  char buffer[PATH_MAX + 1];
  ssize_t n = readlinkat(dirFd, name, buffer, sizeof buffer);
  if (n < 0) return false;
  out->assign(buffer, static_cast<size_t>(n));
  return true;
}

// Next space-separated field of stat's tail; false at the end.
bool NextField(std::string_view* rest, std::string_view* field) {
  size_t start = rest->find_first_not_of(' ');
  if (start == std::string_view::npos) return false;
  size_t end = rest->find(' ', start);
  if (end == std::string_view::npos) end = rest->size();
  *field = rest->substr(start, end - start);
  *rest = rest->substr(end);
  return true;
}

bool ParseInt(std::string_view text, int64_t* value) {
  if (text.empty() || text.size() > 20) return false;
  char buffer[24];
  std::memcpy(buffer, text.data(), text.size());
  buffer[text.size()] = '\0';
  char* end = nullptr;
  errno = 0;
  long long parsed = std::strtoll(buffer, &end, 10);
  if (errno != 0 || end != buffer + text.size()) return false;
  *value = parsed;
  return true;
}

bool ParseUnsigned(std::string_view text, uint64_t* value) {
  if (text.empty() || text.size() > 20 || text[0] == '-') return false;
  char buffer[24];
  std::memcpy(buffer, text.data(), text.size());
  buffer[text.size()] = '\0';
  char* end = nullptr;
  errno = 0;
  unsigned long long parsed = std::strtoull(buffer, &end, 10);
  if (errno != 0 || end != buffer + text.size()) return false;
  *value = parsed;
  return true;
}

// The next blank-separated id of a status line: kEnd when only blanks are left, kBad when it is not a
// decimal uint32.
enum class NextIdResult { kId, kEnd, kBad };
NextIdResult NextId(std::string_view* rest, uint32_t* id) {
  const size_t start = rest->find_first_not_of(" \t");
  if (start == std::string_view::npos) return NextIdResult::kEnd;
  size_t end = rest->find_first_of(" \t", start);
  if (end == std::string_view::npos) end = rest->size();
  uint64_t value = 0;
  if (!ParseUnsigned(rest->substr(start, end - start), &value) || value > 0xffffffffULL) return NextIdResult::kBad;
  *id = static_cast<uint32_t>(value);
  *rest = rest->substr(end);
  return NextIdResult::kId;
}

// "Uid:\t0\t0\t0\t0" → the first three numbers.
bool ParseIdTriple(std::string_view rest, uint32_t ids[3]) {
  for (int i = 0; i < 3; i++) {
    if (NextId(&rest, &ids[i]) != NextIdResult::kId) return false;
  }
  return true;
}

// "Groups:" of status: space-separated decimal ids, possibly none.
bool ParseIdList(std::string_view rest, std::vector<uint32_t>* ids) {
  ids->clear();
  for (uint32_t id = 0;;) {
    switch (NextId(&rest, &id)) {
      case NextIdResult::kId: ids->push_back(id); break;
      case NextIdResult::kEnd: return true;
      case NextIdResult::kBad: return false;
    }
  }
}

std::string_view Trim(std::string_view text) {
  size_t start = text.find_first_not_of(" \t");
  if (start == std::string_view::npos) return {};
  size_t end = text.find_last_not_of(" \t");
  return text.substr(start, end - start + 1);
}

// Length of the valid UTF-8 sequence at bytes[i], or 0 when invalid; *subpart = bytes to replace by one
// U+FFFD then (the maximal prefix of a valid sequence, at least 1).
size_t Utf8SequenceLength(std::string_view bytes, size_t i, size_t* subpart) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(bytes[k]); };
  unsigned char lead = byte(i);
  *subpart = 1;
  if (lead < 0x80) return 1;
  size_t length;
  unsigned char low = 0x80, high = 0xbf;  // allowed range of the second byte
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead == 0xe0) low = 0xa0;   // overlong
    if (lead == 0xed) high = 0x9f;  // surrogates
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead == 0xf0) low = 0x90;   // overlong
    if (lead == 0xf4) high = 0x8f;  // beyond U+10FFFF
  } else {
    return 0;
  }
  for (size_t k = 1; k < length; k++) {
    if (i + k >= bytes.size()) return 0;
    unsigned char next = byte(i + k);
    unsigned char min = k == 1 ? low : 0x80, max = k == 1 ? high : 0xbf;
    if (next < min || next > max) return 0;
    *subpart = k + 1;
  }
  return length;
}

// Cuts bytes to at most maxBytes without splitting a UTF-8 character.
size_t CutAtCharacterBoundary(std::string_view bytes, size_t maxBytes) {
  if (bytes.size() <= maxBytes) return bytes.size();
  size_t cut = maxBytes;
  // Back up over at most 3 continuation bytes to the lead of the character the cut falls into.
  for (size_t back = 0; back < 3 && cut > 0; back++) {
    unsigned char b = static_cast<unsigned char>(bytes[cut]);
    if ((b & 0xc0) != 0x80) break;
    cut--;
  }
  if ((static_cast<unsigned char>(bytes[cut]) & 0xc0) == 0x80) return maxBytes;  // not UTF-8 anyway
  return cut;
}

}  // namespace

std::string ToUtf8Lossy(std::string_view bytes, bool* lossy) {
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    size_t subpart = 1;
    size_t length = Utf8SequenceLength(bytes, i, &subpart);
    if (length > 0) {
      out.append(bytes.data() + i, length);
      i += length;
    } else {
      out.append("\xef\xbf\xbd");
      *lossy = true;
      i += subpart;
    }
  }
  return out;
}

std::optional<ProcStat> ParseProcStat(std::string_view text) {
  size_t open = text.find('(');
  size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) return std::nullopt;
  ProcStat stat;
  stat.comm.assign(text.substr(open + 1, close - open - 1));
  std::string_view rest = text.substr(close + 1);
  // Fields after comm, numbered as in proc(5): 3 state, 4 ppid, 5 pgrp, 6 session, 7 tty_nr, 9 flags, 22 starttime.
  std::string_view field;
  for (int number = 3; number <= 22; number++) {
    if (!NextField(&rest, &field)) return std::nullopt;
    switch (number) {
      case 3:
        if (field.size() != 1) return std::nullopt;
        stat.state = field[0];
        break;
      case 4:
        if (!ParseInt(field, &stat.ppid)) return std::nullopt;
        break;
      case 5:
        if (!ParseInt(field, &stat.pgid)) return std::nullopt;
        break;
      case 6:
        if (!ParseInt(field, &stat.sid)) return std::nullopt;
        break;
      case 7:
        if (!ParseInt(field, &stat.ttyNr)) return std::nullopt;
        break;
      case 9:
        if (!ParseUnsigned(field, &stat.flags)) return std::nullopt;
        break;
      case 22:
        if (!ParseUnsigned(field, &stat.startTicks)) return std::nullopt;
        break;
      default:
        break;
    }
  }
  return stat;
}

ProcStatus ParseProcStatus(std::string_view text) {
  ProcStatus status;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view key = line.substr(0, colon), value = line.substr(colon + 1);
    if (key == "Uid") {
      status.hasUid = ParseIdTriple(value, status.uid);
    } else if (key == "Gid") {
      status.hasGid = ParseIdTriple(value, status.gid);
    } else if (key == "CapEff" || key == "CapPrm") {
      std::string_view hex = Trim(value);
      bool valid = !hex.empty() && hex.size() <= 16 && hex.find_first_not_of("0123456789abcdefABCDEF") == std::string_view::npos;
      if (valid) (key == "CapEff" ? status.capEff : status.capPrm).assign(hex);
    } else if (key == "Groups") {
      status.hasGroups = ParseIdList(value, &status.groups);
    }
  }
  return status;
}

DecodedArgs DecodeCmdline(std::string_view bytes, size_t maxBytes) {
  DecodedArgs decoded;
  if (bytes.size() > maxBytes) {
    decoded.truncated = true;
    bytes = bytes.substr(0, CutAtCharacterBoundary(bytes, maxBytes));
  }
  // The kernel ends every argument with NUL; a final argument without one (a process that rewrote its
  // argv area, or the cut above) still counts.
  size_t start = 0;
  while (start < bytes.size()) {
    size_t end = bytes.find('\0', start);
    if (end == std::string_view::npos) end = bytes.size();
    std::string_view arg = bytes.substr(start, end - start);
    const bool lossyBefore = decoded.lossy;
    decoded.args.push_back(ToUtf8Lossy(arg, &decoded.lossy));
    if (decoded.lossy) {
      // The arguments before the first repaired one were valid UTF-8: their bytes are their text.
      if (!lossyBefore) decoded.bytes.assign(decoded.args.begin(), decoded.args.end() - 1);
      decoded.bytes.emplace_back(arg);
    }
    start = end + 1;
  }
  return decoded;
}

uint64_t NanosPerTick() {
  static const uint64_t nanos = [] {
    long ticks = sysconf(_SC_CLK_TCK);
    return ticks > 0 ? 1000000000ULL / static_cast<uint64_t>(ticks) : 10000000ULL;
  }();
  return nanos;
}

namespace {

constexpr uint64_t kExitingFlag = 0x00000004;  // PF_EXITING (include/linux/sched.h): set first thing in do_exit()

// pidfd_getfd (Linux 5.6): true until the kernel answers ENOSYS once, so older kernels are asked only once.
std::atomic<bool>& PidfdGetfdFlag() {
  static std::atomic<bool> flag{true};
  return flag;
}

// The attributes the snapshot needs of a file reached through a /proc link (or of an fd: name "" and
// AT_EMPTY_PATH), from the kernel's cache, never from the file's filesystem: with AT_STATX_DONT_SYNC, FUSE
// (fs/fuse/dir.c fuse_update_get_attr) and NFS (fs/nfs/inode.c nfs_getattr) answer from their cached
// attributes where a plain stat() may send a request that a user's FUSE daemon or a dead server leaves
// unanswered, freezing the reader thread. On such filesystems a cached size or time may be stale. statx is
// Linux 4.11+: on an older kernel, fstatat (remembered after the first ENOSYS).
bool CachedStat(int dirFd, const char* name, int flags, unsigned int mask, struct stat* st) {
  static std::atomic<bool> statxMissing{false};
  if (!statxMissing.load(std::memory_order_relaxed)) {
    struct statx stx;
    if (statx(dirFd, name, flags | AT_STATX_DONT_SYNC, mask, &stx) == 0) {
      if ((stx.stx_mask & mask) != mask) {
        errno = EOPNOTSUPP;
        return false;
      }
      std::memset(st, 0, sizeof *st);
      st->st_mode = stx.stx_mode;
      st->st_ino = stx.stx_ino;
      st->st_dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
      st->st_rdev = makedev(stx.stx_rdev_major, stx.stx_rdev_minor);
      st->st_size = static_cast<off_t>(stx.stx_size);
      st->st_mtim = timespec{static_cast<time_t>(stx.stx_mtime.tv_sec), static_cast<long>(stx.stx_mtime.tv_nsec)};
      st->st_ctim = timespec{static_cast<time_t>(stx.stx_ctime.tv_sec), static_cast<long>(stx.stx_ctime.tv_nsec)};
      return true;
    }
    if (errno != ENOSYS) return false;
    statxMissing = true;
  }
  return fstatat(dirFd, name, st, flags) == 0;
}

constexpr unsigned int kStatxKind = STATX_TYPE | STATX_MODE | STATX_INO;  // with the device, always filled

bool Gone(int error) { return error == ENOENT || error == ESRCH; }
bool Refused(int error) { return error == EACCES || error == EPERM; }

// ---- standard streams ------------------------------------------------------------------------------------

// The protocol name sockfs gives the socket behind `path` (net/socket.c: sockfs_xattr_get answers
// system.sockprotoname with the name the socket's file was created under, sk_prot_creator->name).
std::string SocketProtocolAt(const char* path) {
  char name[64];
  ssize_t n = getxattr(path, "system.sockprotoname", name, sizeof name - 1);
  if (n <= 0) return {};
  return std::string(name, strnlen(name, static_cast<size_t>(n)));
}

// The socket's protocol, asked by the path of the process's fd link (getxattr has no *at form before Linux
// 6.13, and an O_PATH copy of the link would cost two more system calls per socket), then kept only if the
// link, looked at again through the process's pinned /proc directory, still leads to the stream's socket:
// the pid may name another process by now, or the process may have put another file on that fd.
std::string SocketProtocol(int dirFd, int32_t pid, int fd, uint64_t socketInode) {
  char path[48];
  std::snprintf(path, sizeof path, "/proc/%d/fd/%d", pid, fd);
  std::string protocol = SocketProtocolAt(path);
  if (protocol.empty()) return protocol;
  char fdName[8];
  std::snprintf(fdName, sizeof fdName, "fd/%d", fd);
  struct stat st;
  if (!CachedStat(dirFd, fdName, 0, kStatxKind, &st) || !S_ISSOCK(st.st_mode) || st.st_ino != socketInode) return {};
  return protocol;
}

// An IP socket address as text and port; IPv4-mapped IPv6 addresses as IPv4 (as Elasticsearch's ip type shows them).
bool FormatAddress(const struct sockaddr_storage& address, socklen_t length, std::string* ip, int32_t* port) {
  char buffer[INET6_ADDRSTRLEN];
  if (address.ss_family == AF_INET && length >= sizeof(sockaddr_in)) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&address);
    inet_ntop(AF_INET, &v4->sin_addr, buffer, sizeof buffer);
    *port = ntohs(v4->sin_port);
  } else if (address.ss_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&address);
    if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) inet_ntop(AF_INET, &v6->sin6_addr.s6_addr[12], buffer, sizeof buffer);
    else inet_ntop(AF_INET6, &v6->sin6_addr, buffer, sizeof buffer);
    *port = ntohs(v6->sin6_port);
  } else {
    return false;
  }
  *ip = buffer;
  return true;
}

bool IsIpProtocol(const std::string& protocol) {
  return protocol == "TCP" || protocol == "TCPv6" || protocol == "UDP" || protocol == "UDPv6" || protocol == "UDP-Lite" ||
         protocol == "UDPLITEv6" || protocol == "MPTCP" || protocol == "MPTCPv6" || protocol == "SCTP" || protocol == "SCTPv6";
}

uint64_t MonotonicNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

// Closes the pidfd_getfd copies, on a thread of its own. A copy keeps the observed socket open: if the process
// drops its own fd meanwhile, ours is the socket's last close(), and with SO_LINGER {1, N} and unsent data the
// kernel sleeps in it up to N seconds (net/ipv4/af_inet.c inet_release hands sk_lingertime to tcp_close, which
// waits in sk_stream_wait_close): on the reader thread, any process could stall the sensor at will. The copy's
// linger is left alone: setsockopt on it would change the observed process's own socket.
// Bounded: a copy is taken only while the queue has room and the closer has not been inside one close() for
// over kStuckNs; otherwise the stream goes without its ends (Snapshot::socketEndsSkipped, SocketCopyStats).
// At shutdown nothing waits for it: the thread is detached and its state never freed (no destructor runs
// under it at exit); exit_group kills it, a lingering close ends on that fatal signal (sk_stream_wait_close
// stops on signal_pending), and the copies still queued are closed by the exiting task, which never lingers
// (inet_release lingers only without PF_EXITING).
class CopyCloser {
 public:
  static CopyCloser& Instance() {
    static CopyCloser* closer = new CopyCloser();  // never deleted, see above
    return *closer;
  }

  // Room for one copy, asked before taking it; false (and counted) when full or stuck.
  bool Reserve() {
    std::lock_guard<std::mutex> lock(mutex_);
    const bool stuck = closingSinceNs_ != 0 && MonotonicNs() - closingSinceNs_ > kStuckNs;
    if (stuck || queued_.size() + reserved_ >= kCapacity || !Started()) {
      skipped_++;
      return false;
    }
    reserved_++;
    return true;
  }

  // The reserved room, with the copy to close (or -1 when none was taken).
  void Hand(int copy) {
    std::lock_guard<std::mutex> lock(mutex_);
    reserved_--;
    if (copy < 0) return;
    queued_.push_back(copy);
    wake_.notify_one();
  }

  SocketCopyCounters Counters() {
    std::lock_guard<std::mutex> lock(mutex_);
    return SocketCopyCounters{skipped_, slowCloses_};
  }

 private:
  static constexpr size_t kCapacity = 256;
  static constexpr uint64_t kStuckNs = 100 * 1000000ULL;

  // Under mutex_. The thread is started at the first copy; if it cannot be, no copy is ever taken.
  bool Started() {
    if (!started_) {
      started_ = true;
      try {
        std::thread(&CopyCloser::Run, this).detach();
        running_ = true;
      } catch (const std::system_error&) {
        running_ = false;
      }
    }
    return running_;
  }

  void Run() {
    pthread_setname_np(pthread_self(), "execsentry-copy");  // at most 15 characters
    // Not the real-time priority of the reader thread that may have started it.
    struct sched_param normal = {};
    pthread_setschedparam(pthread_self(), SCHED_OTHER, &normal);
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return !queued_.empty(); });
      const int copy = queued_.front();
      queued_.pop_front();
      const uint64_t since = closingSinceNs_ = MonotonicNs();
      lock.unlock();
      close(copy);
      lock.lock();
      closingSinceNs_ = 0;
      if (MonotonicNs() - since > kStuckNs) slowCloses_++;
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<int> queued_;
  size_t reserved_ = 0;
  uint64_t closingSinceNs_ = 0;
  uint64_t skipped_ = 0, slowCloses_ = 0;
  bool started_ = false, running_ = false;
};

// Both ends of an IP socket of the process, asked of a copy of its fd (pidfd_getfd, Linux 5.6; needs the
// ptrace access the sensor has): getsockname/getpeername cost microseconds, where reading /proc/<pid>/net/tcp
// walks the kernel's whole connection hash table (2.3 ms per read measured on a 2-core VM with 3 sockets).
// The copy counts only if it is the socket stat() saw. Nothing is learnt when the kernel refuses.
// The copy is closed by CopyCloser, never here; false when it had no room, so no copy was taken.
// pidfd_getfd has side effects on the observed socket, as any fd passing has (include/net/sock.h
// __receive_sock, called by fs/file.c receive_fd): on cgroup-v1 hosts with net_cls / net_prio, the socket's
// classid and priority index become those of the agent's cgroup; and SELinux checks the receive
// (security_file_receive), which a policy may deny and audit.
bool ReadSocketEnds(int pidFd, int fd, StdStream* stream) {
  CopyCloser& closer = CopyCloser::Instance();
  if (!closer.Reserve()) return false;
  int copy = static_cast<int>(syscall(SYS_pidfd_getfd, pidFd, fd, 0));
  if (copy < 0) {
    if (errno == ENOSYS) PidfdGetfdFlag() = false;
    closer.Hand(-1);
    return true;
  }
  struct stat st;
  if (CachedStat(copy, "", AT_EMPTY_PATH, kStatxKind, &st) && S_ISSOCK(st.st_mode) && st.st_ino == stream->socketInode) {
    struct sockaddr_storage address;
    socklen_t length = sizeof address;
    if (getsockname(copy, reinterpret_cast<sockaddr*>(&address), &length) == 0) FormatAddress(address, length, &stream->localIp, &stream->localPort);
    length = sizeof address;
    // ENOTCONN: a listening or unconnected socket has no remote end.
    if (getpeername(copy, reinterpret_cast<sockaddr*>(&address), &length) == 0) FormatAddress(address, length, &stream->remoteIp, &stream->remotePort);
  }
  closer.Hand(copy);
  return true;
}

// One standard stream, from its attributes through its fd link (cached: CachedStat): the file type (and a socket's inode), then the link's
// text only where it is a path worth reporting (a file, a device other than /dev/null) and no earlier stream
// of the same file read it. nullopt = unknown, errno-like cause in *error
// (ENOENT: no such fd, which is "closed" only if the process was not leaving, as the caller decides).
std::optional<StdStream> ReadStdStream(int dirFd, int fd, const std::optional<StdStream> (&earlier)[3], const struct stat (&earlierStat)[3], struct stat* st, int* error) {
  char name[8];
  std::snprintf(name, sizeof name, "fd/%d", fd);
  *error = 0;
  if (!CachedStat(dirFd, name, 0, kStatxKind, st)) {
    *error = errno;
    return std::nullopt;
  }
  StdStream stream;
  if (S_ISFIFO(st->st_mode)) {
    stream.type = StdStream::Type::kPipe;
    return stream;
  }
  if (S_ISSOCK(st->st_mode)) {
    stream.type = StdStream::Type::kSocket;
    stream.socketInode = st->st_ino;
    return stream;  // the protocol and ends are read by the caller, once per socket
  }
  if (S_ISCHR(st->st_mode)) {
    stream.type = StdStream::Type::kCharDevice;
    stream.device = DeviceId{static_cast<int64_t>(major(st->st_rdev)), static_cast<int64_t>(minor(st->st_rdev))};
    if (stream.device.major == 1 && stream.device.minor == 3) return stream;  // /dev/null says all by its number
  } else if (S_ISREG(st->st_mode)) {
    stream.type = StdStream::Type::kFile;
  } else {
    stream.type = StdStream::Type::kOther;  // anonymous inodes (eventfd, epoll, ...), directories, block devices
    return stream;
  }
  for (int before = 0; before < fd; before++) {
    if (earlier[before] && earlierStat[before].st_dev == st->st_dev && earlierStat[before].st_ino == st->st_ino && !earlier[before]->path.empty()) {
      stream.path = earlier[before]->path;
      return stream;
    }
  }
  std::string link;
  if (ReadLinkAt(dirFd, name, &link)) {
    bool lossy = false;
    stream.path = ToUtf8Lossy(link, &lossy);
  }
  return stream;
}

// The protocol and, for IP sockets, both ends of each socket among the streams; a socket on two fds (a
// service's stdout and stderr on the journal) is asked once. A pidfd is opened only for an IP socket, and
// trusted only if the process directory still answers after it was opened (so the pid had not changed
// hands).
void DescribeSockets(int dirFd, int32_t pid, bool copySockets, std::optional<StdStream> (&stdio)[3], bool* endsSkipped) {
  int pidFd = -1;
  bool pidFdTried = false;
  for (int fd = 0; fd < 3; fd++) {
    StdStream* stream = stdio[fd] ? &*stdio[fd] : nullptr;
    if (stream == nullptr || stream->type != StdStream::Type::kSocket) continue;
    const StdStream* same = nullptr;
    for (int earlier = 0; earlier < fd && same == nullptr; earlier++) {
      if (stdio[earlier] && stdio[earlier]->socketInode == stream->socketInode) same = &*stdio[earlier];
    }
    if (same != nullptr) {
      *stream = *same;
      continue;
    }
    stream->protocol = SocketProtocol(dirFd, pid, fd, stream->socketInode);
    char name[8];
    std::snprintf(name, sizeof name, "fd/%d", fd);
    if (!IsIpProtocol(stream->protocol) || !copySockets || !PidfdGetfdFlag()) continue;
    if (!pidFdTried) {
      pidFdTried = true;
      pidFd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
      struct stat st;
      if (pidFd >= 0 && !CachedStat(dirFd, name, 0, kStatxKind, &st)) {
        close(pidFd);
        pidFd = -1;
      }
    }
    if (pidFd >= 0 && !ReadSocketEnds(pidFd, fd, stream)) *endsSkipped = true;
  }
  if (pidFd >= 0) close(pidFd);
}

// At most this much of environ is read, as Elastic's exec probe captures at most 40 KiB of the environment
// (elastic/ebpf GPL/Events/Process/Probe.bpf.c, ENV_MAX 40960): the kernel allows argv and environment 6 MiB
// together (fs/exec.c bprm_stack_limits), and reading all of a padded one on every exec would slow the reader
// thread into overruns. A variable beyond the cut is not seen (Snapshot::envVarsTruncated says so).
constexpr size_t kMaxEnvironBytes = 40 * 1024;

// The entries of environ ("NAME=value\0" each, as execve() laid them out: fs/proc/base.c environ_read
// shows the mm's env_start..env_end) whose name is one of `names`, every binding in environ order.
void PickEnvVars(std::string_view environ, const std::vector<std::string>& names, Snapshot* snapshot) {
  size_t start = 0;
  while (start < environ.size()) {
    size_t end = environ.find('\0', start);
    if (end == std::string_view::npos) end = environ.size();
    std::string_view entry = environ.substr(start, end - start);
    start = end + 1;
    size_t equals = entry.find('=');
    if (equals == std::string_view::npos) continue;
    std::string_view name = entry.substr(0, equals);
    for (const std::string& wanted : names) {
      if (name != wanted) continue;
      if (entry.size() - equals - 1 > kMaxEnvVarValueBytes) {
        bool listed = false;
        for (const std::string& seen : snapshot->envVarsOversized) listed = listed || seen == wanted;
        if (!listed) snapshot->envVarsOversized.push_back(wanted);
      } else {
        bool lossy = false;
        snapshot->envVars.push_back(ToUtf8Lossy(entry, &lossy));
      }
      break;
    }
  }
}

// The exec'd file's identity: stat() through the exe link reaches the file the process runs even when
// its path was since replaced or unlinked. Cached attributes (CachedStat): on a network filesystem a file
// changed by another host may still show its old size and times, so the hash cache may reuse an older hash.
bool StatExeFile(int dirFd, struct stat* st) {
  return CachedStat(dirFd, "exe", 0, kStatxKind | STATX_SIZE | STATX_MTIME | STATX_CTIME, st) && S_ISREG(st->st_mode);
}

void SetExeFileKey(const struct stat& st, Snapshot* snapshot) {
  const auto ns = [](const struct timespec& t) {
    return static_cast<unsigned long long>(t.tv_sec) * 1000000000ULL + static_cast<unsigned long long>(t.tv_nsec);
  };
  char key[96];
  std::snprintf(key, sizeof key, "%llx:%llx:%llx:%llx:%llx", static_cast<unsigned long long>(st.st_dev),
                static_cast<unsigned long long>(st.st_ino), static_cast<unsigned long long>(st.st_size), ns(st.st_mtim),
                ns(st.st_ctim));
  snapshot->exeFileKey = key;
  snapshot->exeFileSize = static_cast<uint64_t>(st.st_size);
}

}  // namespace

SocketCopyCounters SocketCopyStats() { return CopyCloser::Instance().Counters(); }

// What vanishes first at exit is read first (kernel/exit.c do_exit: exit_signals sets PF_EXITING, then
// exit_mm drops exe and cmdline, exit_files the fds, exit_fs the cwd; the task turns zombie, then is
// reaped). The one stat after exe and cmdline proves whose files these are (start time) and whether the
// process was leaving; nothing read through the directory fd can belong to a later holder of the pid
// (fs/proc/base.c looks every file up through the directory inode's struct pid).
Snapshot TakeSnapshot(const SnapshotRequest& request) {
  Snapshot snapshot;
  snapshot.pid = request.pid;
  const auto finish = [&](int dirFd) {
    if (dirFd >= 0) close(dirFd);
    return snapshot;
  };
  std::string path = request.procRoot + "/" + std::to_string(request.pid);
  int dirFd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirFd < 0) {
    snapshot.partial = true;
    snapshot.exited = Gone(errno);
    snapshot.denied = Refused(errno);
    return finish(-1);
  }

  const auto setPath = [&snapshot](const std::string& link, std::optional<std::string>* text, std::optional<std::string>* bytes) {
    bool lossy = false;
    *text = ToUtf8Lossy(link, &lossy);
    if (!lossy) return;
    *bytes = link;
    snapshot.pathsLossy = true;
  };
  bool denied = false;
  const auto note = [&denied](int error) { denied = denied || Refused(error); };

  std::string exe;
  const bool exeRead = ReadLinkAt(dirFd, "exe", &exe);
  if (!exeRead) note(errno);
  std::string cmdline;
  const bool cmdlineRead = ReadFileAt(dirFd, "cmdline", request.maxArgsBytes + 1, &cmdline);
  if (!cmdlineRead) note(errno);
  // Like cmdline, environ is the process's memory, gone at exit_mm: read before stat proves whose it was.
  std::string environ;
  const bool wantEnv = request.envVarNames != nullptr && !request.envVarNames->empty();
  const bool environRead = wantEnv && ReadFileAt(dirFd, "environ", kMaxEnvironBytes + 1, &environ);
  struct stat exeFile;
  const bool exeFileRead = request.exeFileKey && exeRead && StatExeFile(dirFd, &exeFile);

  std::string text;
  std::optional<ProcStat> stat;
  if (ReadFileAt(dirFd, "stat", 4096, &text)) stat = ParseProcStat(text);
  else snapshot.exited = Gone(errno);
  if (!stat) {
    // Reaped before its start time could be read: nothing read so far is proven to be this process's.
    snapshot.partial = true;
    snapshot.denied = denied;
    return finish(dirFd);
  }
  if (request.notStartedAfterBoottimeNs && stat->startTicks * NanosPerTick() > *request.notStartedAfterBoottimeNs) {
    snapshot.partial = true;
    snapshot.reused = true;
    return finish(dirFd);
  }
  snapshot.kernelThread = (stat->flags & kKernelThreadFlag) != 0;
  bool leaving = stat->state == 'Z' || stat->state == 'X' || (stat->flags & kExitingFlag) != 0;
  bool missing = false;

  if (exeRead) setPath(exe, &snapshot.executable, &snapshot.executableBytes);
  else if (!snapshot.kernelThread) missing = true;
  if (environRead && environ.size() > kMaxEnvironBytes) {
    // Only whole entries: the one the cut falls into could read as a shorter value of its variable.
    const size_t lastEnd = environ.rfind('\0', kMaxEnvironBytes - 1);
    environ.resize(lastEnd == std::string::npos ? 0 : lastEnd + 1);
    snapshot.envVarsTruncated = true;
  }
  if (environRead) PickEnvVars(environ, *request.envVarNames, &snapshot);
  if (exeFileRead) SetExeFileKey(exeFile, &snapshot);
  // An exiting process (its memory gone) shows an empty cmdline, as does a live one exec'd with argv = {}:
  // only a process not yet leaving when stat was read had its memory while cmdline was read.
  if (cmdlineRead && (!cmdline.empty() || (!leaving && !snapshot.kernelThread))) snapshot.args = DecodeCmdline(cmdline, request.maxArgsBytes);
  else if (!snapshot.kernelThread) missing = true;

  std::string link;
  if (ReadLinkAt(dirFd, "cwd", &link)) setPath(link, &snapshot.cwd, &snapshot.cwdBytes);
  else note(errno), missing = true;

  // One short read (a line per hierarchy), for container.id.
  if (ReadFileAt(dirFd, "cgroup", 16384, &text)) snapshot.cgroup = text;

  // fd 0, 1 and 2: what each standard stream is (process.interactive and execsentry.stdio.*).
  if (!snapshot.kernelThread) {
    int errors[3];
    struct stat stats[3];
    bool someMissing = false;
    for (int fd = 0; fd < 3; fd++) {
      snapshot.stdio[fd] = ReadStdStream(dirFd, fd, snapshot.stdio, stats, &stats[fd], &errors[fd]);
      note(errors[fd]);
      someMissing = someMissing || errors[fd] == ENOENT;
    }
    if (someMissing && !leaving) {
      // A missing fd link is a closed fd only if the process had not begun to exit: exe still there after
      // the fd reads means exit_mm, which comes before exit_files, had not run yet.
      std::string again;
      if (exeRead && !ReadLinkAt(dirFd, "exe", &again)) leaving = true;
      if (!leaving) {
        for (int fd = 0; fd < 3; fd++) {
          if (errors[fd] == ENOENT) snapshot.stdio[fd] = StdStream{};
        }
      }
    }
    if (request.procRoot == "/proc") DescribeSockets(dirFd, request.pid, !request.withoutPidfdGetfd, snapshot.stdio, &snapshot.socketEndsSkipped);
    for (const auto& stream : snapshot.stdio) missing = missing || !stream;
  }

  // Ids, capability masks and supplemental groups in one read. status is needed for the groups on every
  // kernel (no other interface has them), so the cheaper sources of ids and capabilities (PIDFD_GET_INFO
  // on 6.13+, capget) would only add three system calls and a pidfd to it.
  if (ReadFileAt(dirFd, "status", 16384, &text)) {
    ProcStatus ids = ParseProcStatus(text);
    if (ids.hasGroups) snapshot.groups = std::move(ids.groups);
    if (ids.hasUid && ids.hasGid) snapshot.status = std::move(ids);
    else missing = true;
  } else {
    note(errno);
    missing = true;
  }

  snapshot.stat = stat;
  snapshot.exited = leaving;
  snapshot.denied = denied;
  snapshot.partial = missing && !snapshot.kernelThread;
  return finish(dirFd);
}

std::optional<std::vector<uint32_t>> ReadGroups(const std::string& procRoot, int32_t pid, uint64_t notStartedAfterBoottimeNs) {
  const std::string path = procRoot + "/" + std::to_string(pid);
  const int dirFd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirFd < 0) return std::nullopt;
  std::optional<std::vector<uint32_t>> groups;
  std::string text;
  // Both through the one directory handle: the same process's (see TakeSnapshot).
  if (ReadFileAt(dirFd, "status", 16384, &text)) {
    ProcStatus status = ParseProcStatus(text);
    if (status.hasGroups && ReadFileAt(dirFd, "stat", 4096, &text)) {
      const std::optional<ProcStat> stat = ParseProcStat(text);
      if (stat && stat->startTicks * NanosPerTick() <= notStartedAfterBoottimeNs) groups = std::move(status.groups);
    }
  }
  close(dirFd);
  return groups;
}

std::vector<int32_t> ListPids(const std::string& procRoot) {
  std::vector<int32_t> pids;
  DIR* dir = opendir(procRoot.c_str());
  if (dir == nullptr) return pids;
  while (struct dirent* entry = readdir(dir)) {
    const char* name = entry->d_name;
    if (name[0] < '1' || name[0] > '9') continue;
    char* end = nullptr;
    long pid = std::strtol(name, &end, 10);
    if (*end == '\0' && pid > 0 && pid <= 0x7fffffff) pids.push_back(static_cast<int32_t>(pid));
  }
  closedir(dir);
  return pids;
}

}  // namespace execsentry
