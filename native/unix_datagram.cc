// Datagrams to unix sockets: Node.js has no AF_UNIX SOCK_DGRAM, so this must be native. One sender serves
// sd_notify(3) ($NOTIFY_SOCKET, blocking, one message) and the syslog output (/dev/log or any datagram
// socket, many messages per call, never blocking the JavaScript thread: a full receive queue stops the
// batch and reports how far it got, and the caller retries later).
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "parts.h"

namespace execsentry {

namespace {

struct Payload {
  const char* data;
  size_t size;
};

// Sends payloads in order on one socket. Returns how many were sent; stops early only at EAGAIN when
// non_blocking (the receiver's queue is full). Any other failure throws a JavaScript error naming the path.
size_t SendDatagrams(Napi::Env env, const char* caller, const std::string& path, const std::vector<Payload>& payloads,
                     bool non_blocking) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path) || (path[0] != '/' && path[0] != '@')) {
    throw Napi::Error::New(env, std::string(caller) + ": the socket must be an absolute path or start with '@'");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  const socklen_t addr_len =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (path[0] == '@' ? 0 : 1));

  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Napi::Error::New(env, std::string(caller) + ": socket: " + std::strerror(errno));
  const int flags = MSG_NOSIGNAL | (non_blocking ? MSG_DONTWAIT : 0);
  size_t sent_count = 0;
  for (const Payload& payload : payloads) {
    ssize_t sent;
    do {
      sent = sendto(fd, payload.data, payload.size, flags, reinterpret_cast<sockaddr*>(&addr), addr_len);
    } while (sent < 0 && errno == EINTR);
    if (sent < 0) {
      const int saved = errno;
      close(fd);
      if (non_blocking && (saved == EAGAIN || saved == EWOULDBLOCK)) return sent_count;
      Napi::Error error = Napi::Error::New(env, std::string(caller) + ": sendto " + path + ": " + std::strerror(saved));
      error.Set("code", Napi::String::New(env, saved == EMSGSIZE ? "EMSGSIZE" : saved == ENOENT ? "ENOENT" : saved == ECONNREFUSED ? "ECONNREFUSED" : "ESEND"));
      error.Set("sent", Napi::Number::New(env, static_cast<double>(sent_count)));
      throw error;
    }
    ++sent_count;
  }
  close(fd);
  return sent_count;
}

// sdNotify(socketPath, message): one blocking datagram; true when sent.
Napi::Value SdNotify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) {
    throw Napi::TypeError::New(env, "sdNotify(socketPath, message): both must be strings");
  }
  const std::string message = info[1].As<Napi::String>().Utf8Value();
  SendDatagrams(env, "sdNotify", info[0].As<Napi::String>().Utf8Value(), {{message.data(), message.size()}}, false);
  return Napi::Boolean::New(env, true);
}

// sendUnixDatagrams(socketPath, messages: Buffer[]): how many were sent before the receiver's queue filled.
Napi::Value SendUnixDatagrams(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsArray()) {
    throw Napi::TypeError::New(env, "sendUnixDatagrams(socketPath, messages): a string and an array of Buffers");
  }
  const Napi::Array messages = info[1].As<Napi::Array>();
  std::vector<Payload> payloads;
  payloads.reserve(messages.Length());
  for (uint32_t i = 0; i < messages.Length(); ++i) {
    const Napi::Value value = messages.Get(i);
    if (!value.IsBuffer()) throw Napi::TypeError::New(env, "sendUnixDatagrams: every message must be a Buffer");
    const Napi::Buffer<char> buffer = value.As<Napi::Buffer<char>>();
    payloads.push_back({buffer.Data(), buffer.Length()});
  }
  const size_t sent = SendDatagrams(env, "sendUnixDatagrams", info[0].As<Napi::String>().Utf8Value(), payloads, true);
  return Napi::Number::New(env, static_cast<double>(sent));
}

}  // namespace

void InitUnixDatagram(Napi::Env env, Napi::Object exports) {
  exports.Set("sdNotify", Napi::Function::New(env, SdNotify, "sdNotify"));
  exports.Set("sendUnixDatagrams", Napi::Function::New(env, SendUnixDatagrams, "sendUnixDatagrams"));
}

}  // namespace execsentry
