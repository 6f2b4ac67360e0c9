// BpfMap: one map, through its own (duplicated) file descriptor, so it stays valid whatever
// happens to the BpfObject it came from.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

namespace xdpids {

class BpfMap : public Napi::ObjectWrap<BpfMap> {
 public:
  static Napi::Function Init(Napi::Env env);
  // JS: new BpfMap(fd: number, name?: string) | new BpfMap(pinPath: string, name?: string)
  explicit BpfMap(const Napi::CallbackInfo& info);
  ~BpfMap() override;

 private:
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Lookup(const Napi::CallbackInfo& info);
  Napi::Value Update(const Napi::CallbackInfo& info);
  Napi::Value Delete(const Napi::CallbackInfo& info);
  Napi::Value GetNextKey(const Napi::CallbackInfo& info);
  Napi::Value LookupBatch(const Napi::CallbackInfo& info);
  Napi::Value LookupAndDeleteBatch(const Napi::CallbackInfo& info);
  Napi::Value DeleteBatch(const Napi::CallbackInfo& info);
  Napi::Value UpdateBatch(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  Napi::Value BatchRead(const Napi::CallbackInfo& info, bool andDelete);
  void CheckOpen(Napi::Env env, const char* op) const;
  const uint8_t* CheckKey(const Napi::CallbackInfo& info, size_t idx, const char* op) const;

  int fd_ = -1;
  std::string name_;
  uint32_t type_ = 0;
  uint32_t key_size_ = 0;
  uint32_t value_size_ = 0;
  uint32_t max_entries_ = 0;
  uint32_t flags_ = 0;
  uint32_t id_ = 0;
  bool per_cpu_ = false;
  size_t value_buf_size_ = 0;  // value_size, or possible CPUs * round_up(value_size, 8)
};

}  // namespace xdpids
