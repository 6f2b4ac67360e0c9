// Module entry: classes and the few free functions of xdp_ids_native.
#include <bpf/libbpf.h>
#include <napi.h>

#include "bpf_map.h"
#include "bpf_object.h"
#include "common.h"
#include "ring_buffer.h"

namespace xdpids {
namespace {

Napi::Value LibbpfVersion(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), libbpf_version_string());
}

Napi::Value NumPossibleCpus(const Napi::CallbackInfo& info) {
  int n = libbpf_num_possible_cpus();
  if (n < 0) throw BpfError(info.Env(), "libbpf_num_possible_cpus", "", PositiveErr(n));
  return Napi::Number::New(info.Env(), n);
}

// setErrorClasses(BpfError, TypeError, RangeError): the classes native errors are made from;
// BpfError is called as new BpfError(message, props).
Napi::Value SetErrorClasses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  for (size_t i = 0; i < 3; i++) {
    if (info.Length() <= i || !info[i].IsFunction()) {
      throw Napi::TypeError::New(env, "setErrorClasses(BpfError, TypeError, RangeError) needs three constructors");
    }
  }
  AddonData* data = env.GetInstanceData<AddonData>();
  data->errorClass = Napi::Persistent(info[0].As<Napi::Function>());
  data->typeErrorClass = Napi::Persistent(info[1].As<Napi::Function>());
  data->rangeErrorClass = Napi::Persistent(info[2].As<Napi::Function>());
  return env.Undefined();
}

Napi::Value TakeLog(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), TakeLibbpfLog());
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InstallLibbpfPrint();
  env.SetInstanceData(new AddonData());
  exports.Set("BpfObject", BpfObject::Init(env));
  exports.Set("BpfMap", BpfMap::Init(env));
  exports.Set("RingBuffer", RingBuffer::Init(env));
  exports.Set("libbpfVersion", Napi::Function::New<LibbpfVersion>(env, "libbpfVersion"));
  exports.Set("numPossibleCpus", Napi::Function::New<NumPossibleCpus>(env, "numPossibleCpus"));
  exports.Set("setErrorClasses", Napi::Function::New<SetErrorClasses>(env, "setErrorClasses"));
  exports.Set("takeLibbpfLog", Napi::Function::New<TakeLog>(env, "takeLibbpfLog"));
  return exports;
}

}  // namespace
}  // namespace xdpids

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  return xdpids::Init(env, exports);
}

NODE_API_MODULE(xdp_ids_native, InitModule)
