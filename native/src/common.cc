#include "common.h"

#include <bpf/libbpf.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>

namespace xdpids {

// ---- libbpf log -------------------------------------------------------------

namespace {

constexpr size_t kGlobalLogMax = 64 * 1024;

constexpr int kLogLevel = LIBBPF_WARN;
std::mutex g_log_mutex;
std::string g_log;  // guarded by g_log_mutex
thread_local std::string* t_capture = nullptr;

int PrintFn(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (static_cast<int>(level) > kLogLevel) return 0;
  char small[512];
  va_list copy;
  va_copy(copy, args);
  int n = vsnprintf(small, sizeof(small), fmt, copy);
  va_end(copy);
  if (n < 0) return 0;
  std::string line;
  if (static_cast<size_t>(n) < sizeof(small)) {
    line.assign(small, static_cast<size_t>(n));
  } else {
    line.resize(static_cast<size_t>(n) + 1);
    vsnprintf(&line[0], line.size(), fmt, args);
    line.resize(static_cast<size_t>(n));
  }
  if (t_capture != nullptr) {
    t_capture->append(line);
  } else {
    std::lock_guard<std::mutex> lock(g_log_mutex);
    g_log.append(line);
    if (g_log.size() > kGlobalLogMax) g_log.erase(0, g_log.size() - kGlobalLogMax);
  }
  return n;
}

}  // namespace

void InstallLibbpfPrint() { libbpf_set_print(PrintFn); }


std::string TakeLibbpfLog() {
  std::lock_guard<std::mutex> lock(g_log_mutex);
  std::string out;
  out.swap(g_log);
  return out;
}

LogCapture::LogCapture() : prev_(t_capture) { t_capture = &text_; }

LogCapture::~LogCapture() {
  t_capture = prev_;
  if (prev_ != nullptr) prev_->append(text_);
}

// ---- errors -------------------------------------------------------------------

namespace {

struct NamedErr {
  int err;
  const char* name;
  const char* text;
};

// Kernel-internal and libbpf-specific codes that glibc does not know.
const NamedErr kExtraErrs[] = {
    {524, "ENOTSUPP", "Operation is not supported"},
    {525, "ETOOSMALL", "Buffer too small"},
    {4000, "LIBBPF_ERRNO__LIBELF", nullptr},
    {4001, "LIBBPF_ERRNO__FORMAT", nullptr},
    {4002, "LIBBPF_ERRNO__KVERSION", nullptr},
    {4003, "LIBBPF_ERRNO__ENDIAN", nullptr},
    {4004, "LIBBPF_ERRNO__INTERNAL", nullptr},
    {4005, "LIBBPF_ERRNO__RELOC", nullptr},
    {4006, "LIBBPF_ERRNO__LOAD", nullptr},
    {4007, "LIBBPF_ERRNO__VERIFY", nullptr},
    {4008, "LIBBPF_ERRNO__PROG2BIG", nullptr},
    {4009, "LIBBPF_ERRNO__KVER", nullptr},
    {4010, "LIBBPF_ERRNO__PROGTYPE", nullptr},
    {4011, "LIBBPF_ERRNO__WRNGPID", nullptr},
    {4012, "LIBBPF_ERRNO__INVSEQ", nullptr},
    {4013, "LIBBPF_ERRNO__NLPARSE", nullptr},
};

const NamedErr* FindExtra(int err) {
  for (const auto& e : kExtraErrs) {
    if (e.err == err) return &e;
  }
  return nullptr;
}

// Verifier logs can be megabytes; the message keeps the end (where the verifier says why),
// error.log keeps everything.
constexpr size_t kMessageLogMax = 64 * 1024;

}  // namespace

std::string ErrnoName(int err) {
  if (const NamedErr* e = FindExtra(err)) return e->name;
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
  return "E" + std::to_string(err);
}

std::string ErrnoText(int err) {
  if (const NamedErr* e = FindExtra(err)) {
    if (e->text != nullptr) return e->text;
    char buf[256];
    libbpf_strerror(err, buf, sizeof(buf));
    return buf;
  }
  char buf[256];
  const char* s = strerror_r(err, buf, sizeof(buf));  // GNU variant
  return s;
}

Napi::Error BpfError(Napi::Env env, const std::string& op, const std::string& target, int err,
                     const std::string& detail, const std::string& log) {
  std::string code = ErrnoName(err);
  std::string message = op + "(" + target + "): " + ErrnoText(err) + " (" + code + ")";
  if (!detail.empty()) message += "; " + detail;
  if (!log.empty()) {
    std::string trimmed = log;
    while (!trimmed.empty() && trimmed.back() == '\n') trimmed.pop_back();
    if (trimmed.size() > kMessageLogMax) {
      size_t cut = trimmed.size() - kMessageLogMax;
      trimmed = "[" + std::to_string(cut) + " bytes of libbpf log omitted, see error.log]\n" +
                trimmed.substr(cut);
    }
    message += "\nlibbpf log:\n" + trimmed;
  }

  Napi::Object props = Napi::Object::New(env);
  props.Set("errno", Napi::Number::New(env, err));
  props.Set("code", Napi::String::New(env, code));
  props.Set("op", Napi::String::New(env, op));
  props.Set("target", Napi::String::New(env, target));
  if (!log.empty()) props.Set("log", Napi::String::New(env, log));

  AddonData* data = env.GetInstanceData<AddonData>();
  if (data != nullptr && !data->errorClass.IsEmpty()) {
    Napi::Object obj = data->errorClass.New({Napi::String::New(env, message), props});
    return Napi::Error(env, obj);
  }
  Napi::Error error = Napi::Error::New(env, message);
  Napi::Object obj = error.Value();
  for (const char* key : {"errno", "code", "op", "target", "log"}) {
    if (props.Has(key)) obj.Set(key, props.Get(key));
  }
  return error;
}

namespace {

Napi::Error ErrorOf(Napi::Env env, Napi::FunctionReference AddonData::*cls, bool range,
                    const std::string& message) {
  AddonData* data = env.GetInstanceData<AddonData>();
  if (data != nullptr && !(data->*cls).IsEmpty()) {
    return Napi::Error(env, (data->*cls).New({Napi::String::New(env, message)}));
  }
  return range ? static_cast<Napi::Error>(Napi::RangeError::New(env, message))
               : static_cast<Napi::Error>(Napi::TypeError::New(env, message));
}

}  // namespace

Napi::Error TypeErr(Napi::Env env, const std::string& message) {
  return ErrorOf(env, &AddonData::typeErrorClass, false, message);
}

Napi::Error RangeErr(Napi::Env env, const std::string& message) {
  return ErrorOf(env, &AddonData::rangeErrorClass, true, message);
}

// ---- arguments ----------------------------------------------------------------

bool ArgIsMissing(const Napi::CallbackInfo& info, size_t idx) {
  return info.Length() <= idx || info[idx].IsUndefined();
}

std::string ArgString(const Napi::CallbackInfo& info, size_t idx, const char* what) {
  if (info.Length() <= idx || !info[idx].IsString()) {
    throw TypeErr(info.Env(), std::string(what) + " must be a string");
  }
  std::string s = info[idx].As<Napi::String>().Utf8Value();
  if (s.find('\0') != std::string::npos) {
    throw TypeErr(info.Env(), std::string(what) + " must not contain NUL bytes");
  }
  return s;
}

int64_t ValueInt(Napi::Env env, const Napi::Value& v, const std::string& what, int64_t min,
                 int64_t max) {
  if (!v.IsNumber()) throw TypeErr(env, what + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d) {
    throw RangeErr(env, what + " must be an integer, got " + std::to_string(d));
  }
  if (d < static_cast<double>(min) || d > static_cast<double>(max)) {
    throw RangeErr(env, what + " must be between " + std::to_string(min) +
                                         " and " + std::to_string(max) + ", got " +
                                         std::to_string(static_cast<long long>(d)));
  }
  return static_cast<int64_t>(d);
}

int64_t ArgInt(const Napi::CallbackInfo& info, size_t idx, const char* what, int64_t min,
               int64_t max) {
  if (info.Length() <= idx) {
    throw TypeErr(info.Env(), std::string(what) + " must be a number");
  }
  return ValueInt(info.Env(), info[idx], what, min, max);
}

Bytes ValueBytes(Napi::Env env, const Napi::Value& v, const std::string& what) {
  if (!v.IsTypedArray() ||
      v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw TypeErr(env, what + " must be a Buffer or Uint8Array");
  }
  Napi::Uint8Array arr = v.As<Napi::Uint8Array>();
  return Bytes{arr.Data(), arr.ByteLength()};
}

Bytes ArgBytes(const Napi::CallbackInfo& info, size_t idx, const char* what) {
  if (info.Length() <= idx) {
    throw TypeErr(info.Env(), std::string(what) + " must be a Buffer or Uint8Array");
  }
  return ValueBytes(info.Env(), info[idx], what);
}

Napi::Object ArgOptions(const Napi::CallbackInfo& info, size_t idx, const char* what) {
  if (info.Length() <= idx || info[idx].IsUndefined() || info[idx].IsNull()) {
    return Napi::Object::New(info.Env());
  }
  if (!info[idx].IsObject() || info[idx].IsArray() || info[idx].IsFunction()) {
    throw TypeErr(info.Env(), std::string(what) + " must be an object");
  }
  return info[idx].As<Napi::Object>();
}

std::string Join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); i++) {
    if (i > 0) out += sep;
    out += parts[i];
  }
  return out;
}

}  // namespace xdpids
