// RingBuffer: a BPF ring buffer map drained by a background thread; each drained batch of
// samples is copied and handed to JS through a thread-safe function.
#pragma once

#include <napi.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

struct ring_buffer;

namespace xdpids {

class RingBuffer : public Napi::ObjectWrap<RingBuffer> {
 public:
  static Napi::Function Init(Napi::Env env);
  // JS: new RingBuffer(mapFd: number, onBatch: (data: Buffer, offsets: Uint32Array) => void)
  // Sample i of a batch is data[offsets[i], offsets[i + 1]).
  explicit RingBuffer(const Napi::CallbackInfo& info);
  ~RingBuffer() override;

  // Shared with the thread-safe function, which can outlive this object.
  struct State {
    std::atomic<bool> closed{false};
    std::atomic<uint64_t> delivered{0};
    std::atomic<uint64_t> dropped{0};
    std::atomic<uint64_t> delivered_batches{0};
    std::atomic<uint64_t> dropped_batches{0};
    std::atomic<int> poll_errno{0};
  };
  struct Batch {
    std::vector<uint8_t> data;
    std::vector<uint32_t> offsets{0};
    size_t count() const { return offsets.size() - 1; }
  };
  using Context = std::shared_ptr<State>;
  static void CallJs(Napi::Env env, Napi::Function callback, Context* ctx, Batch* batch);
  using Tsfn = Napi::TypedThreadSafeFunction<Context, Batch, CallJs>;

 private:
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value JsRef(const Napi::CallbackInfo& info);
  Napi::Value JsUnref(const Napi::CallbackInfo& info);
  Napi::Value IsClosed(const Napi::CallbackInfo& info);

  static int OnSample(void* ctx, void* data, size_t size);
  static void OnEnvCleanup(void* arg);
  void Run();
  bool Drain();
  void Shutdown();

  napi_env env_;
  std::string name_;
  std::shared_ptr<State> state_;
  Tsfn tsfn_;
  struct ring_buffer* rb_ = nullptr;
  int map_fd_ = -1;
  int wake_fd_ = -1;
  std::thread thread_;
  bool open_ = false;
  bool hook_added_ = false;
  bool js_ref_held_ = false;
  // Owned by the poll thread.
  std::unique_ptr<Batch> batch_;
  bool batch_full_ = false;
};

}  // namespace xdpids
