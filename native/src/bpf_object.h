// BpfObject: a struct bpf_object* (one .bpf.o file), its programs, maps, XDP and TC egress attachments.
#pragma once

#include <napi.h>

#include <string>

struct bpf_object;
struct bpf_program;
struct bpf_map;

namespace xdpids {

class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  static Napi::Function Init(Napi::Env env);
  // JS: new BpfObject(path: string, opts?: { pinDir?: string; maxEntries?: Record<string, number> })
  explicit BpfObject(const Napi::CallbackInfo& info);
  ~BpfObject() override;

 private:
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Name(const Napi::CallbackInfo& info);
  Napi::Value Log(const Napi::CallbackInfo& info);
  Napi::Value IsLoaded(const Napi::CallbackInfo& info);
  Napi::Value IsClosed(const Napi::CallbackInfo& info);
  Napi::Value Programs(const Napi::CallbackInfo& info);
  Napi::Value ProgramFd(const Napi::CallbackInfo& info);
  Napi::Value Maps(const Napi::CallbackInfo& info);
  Napi::Value MapFd(const Napi::CallbackInfo& info);
  Napi::Value MapInfo(const Napi::CallbackInfo& info);
  Napi::Value AttachXdp(const Napi::CallbackInfo& info);
  Napi::Value AttachTcEgress(const Napi::CallbackInfo& info);
  Napi::Value TestRun(const Napi::CallbackInfo& info);
  static Napi::Value DetachXdp(const Napi::CallbackInfo& info);
  static Napi::Value DetachTcEgress(const Napi::CallbackInfo& info);
  static Napi::Value QueryXdp(const Napi::CallbackInfo& info);

  void CheckOpen(Napi::Env env, const char* op) const;
  struct bpf_program* FindProgram(Napi::Env env, const std::string* name, const char* op) const;
  int LoadedProgramFd(Napi::Env env, const std::string* name, const char* op,
                      std::string* found) const;
  struct bpf_map* FindMap(Napi::Env env, const std::string& name, const char* op) const;

  struct bpf_object* obj_ = nullptr;
  std::string name_;
  std::string log_;  // libbpf warnings from open/load
  bool loaded_ = false;
};

}  // namespace xdpids
