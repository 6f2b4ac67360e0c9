// Shared helpers: errno-carrying JS errors, libbpf log capture, argument checks.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace xdpids {

// Per-environment state (worker threads each get their own).
struct AddonData {
  // Registered by bpf.ts: errors are created in its realm (a jest or vm context has its own
  // TypeError/RangeError, and instanceof must work there).
  Napi::FunctionReference errorClass;  // BpfError
  Napi::FunctionReference typeErrorClass;
  Napi::FunctionReference rangeErrorClass;
};

// ---- libbpf log -------------------------------------------------------------

void InstallLibbpfPrint();
// 0 = warn, 1 = info, 2 = debug (libbpf_print_level).
// Messages printed outside any LogCapture scope since the last call.
std::string TakeLibbpfLog();

// While alive, libbpf messages printed by this thread go to text() instead of the global log.
class LogCapture {
 public:
  LogCapture();
  ~LogCapture();
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::string* prev_;
};

// ---- errors -------------------------------------------------------------------

std::string ErrnoName(int err);  // "ENOSPC"
std::string ErrnoText(int err);  // "No space left on device"

// "op(target): text (CODE)[; detail][\nlog]" with errno/code/op/target/log properties; an
// instance of the registered BpfError class when there is one.
Napi::Error BpfError(Napi::Env env, const std::string& op, const std::string& target, int err,
                     const std::string& detail = std::string(),
                     const std::string& log = std::string());

Napi::Error TypeErr(Napi::Env env, const std::string& message);
Napi::Error RangeErr(Napi::Env env, const std::string& message);

// libbpf 1.x returns -errno, or NULL with errno set; this normalises both to a positive errno.
inline int PositiveErr(int ret) { return ret < 0 ? -ret : ret; }

// ---- arguments ----------------------------------------------------------------

struct Bytes {
  const uint8_t* data;
  size_t len;
};

std::string ArgString(const Napi::CallbackInfo& info, size_t idx, const char* what);
bool ArgIsMissing(const Napi::CallbackInfo& info, size_t idx);
// Integer in [min, max]; TypeError when not a number, RangeError when out of range.
int64_t ArgInt(const Napi::CallbackInfo& info, size_t idx, const char* what, int64_t min,
               int64_t max);
int64_t ValueInt(Napi::Env env, const Napi::Value& v, const std::string& what, int64_t min,
                 int64_t max);
// Buffer or other Uint8Array.
Bytes ArgBytes(const Napi::CallbackInfo& info, size_t idx, const char* what);
Bytes ValueBytes(Napi::Env env, const Napi::Value& v, const std::string& what);
// Optional options object: undefined/null -> empty object.
Napi::Object ArgOptions(const Napi::CallbackInfo& info, size_t idx, const char* what);

std::string Join(const std::vector<std::string>& parts, const char* sep);

}  // namespace xdpids
