#include "ring_buffer.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "common.h"

namespace xdpids {

namespace {

constexpr int kPollTimeoutMs = 100;
constexpr size_t kMaxQueuedBatches = 256;
constexpr size_t kMaxBatchEvents = 8192;
constexpr size_t kMaxBatchBytes = 1 << 20;
// Returned by OnSample to make ring_buffer__consume stop once a batch is full; the sample
// itself has been consumed and copied by then.
constexpr int kBatchFull = -ECANCELED;

}  // namespace

Napi::Function RingBuffer::Init(Napi::Env env) {
  return DefineClass(env, "RingBuffer",
                     {
                         InstanceMethod<&RingBuffer::Stats>("stats"),
                         InstanceMethod<&RingBuffer::Close>("close"),
                         InstanceMethod<&RingBuffer::JsRef>("ref"),
                         InstanceMethod<&RingBuffer::JsUnref>("unref"),
                         InstanceAccessor<&RingBuffer::IsClosed>("closed"),
                     });
}

RingBuffer::RingBuffer(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<RingBuffer>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ArgInt(info, 0, "mapFd", 0, std::numeric_limits<int32_t>::max()));
  if (info.Length() < 2 || !info[1].IsFunction()) {
    throw TypeErr(env, "onEvents must be a function");
  }
  Napi::Function callback = info[1].As<Napi::Function>();

  name_ = "fd " + std::to_string(fd);
  struct bpf_map_info mi;
  memset(&mi, 0, sizeof(mi));
  uint32_t len = sizeof(mi);
  int err = bpf_obj_get_info_by_fd(fd, &mi, &len);
  if (err != 0) {
    throw BpfError(env, "bpf_obj_get_info_by_fd", name_, PositiveErr(err), "not a BPF map?");
  }
  name_ = mi.name;
  if (mi.type != BPF_MAP_TYPE_RINGBUF) {
    const char* t = libbpf_bpf_map_type_str(static_cast<enum bpf_map_type>(mi.type));
    throw BpfError(env, "ring_buffer__new", name_, EINVAL,
                   std::string("map type is ") + (t != nullptr ? t : "unknown") +
                       ", not ringbuf");
  }

  map_fd_ = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (map_fd_ < 0) throw BpfError(env, "dup", name_, errno);
  {
    LogCapture cap;
    rb_ = ring_buffer__new(map_fd_, OnSample, this, nullptr);
    if (rb_ == nullptr) {
      int e = errno;
      close(map_fd_);
      map_fd_ = -1;
      throw BpfError(env, "ring_buffer__new", name_, e, "", cap.text());
    }
  }
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    int e = errno;
    ring_buffer__free(rb_);
    rb_ = nullptr;
    close(map_fd_);
    map_fd_ = -1;
    throw BpfError(env, "eventfd", name_, e);
  }

  state_ = std::make_shared<State>();
  Context* ctx = new Context(state_);
  try {
    tsfn_ = Tsfn::New(
        env, callback, "xdp-ids:RingBuffer", kMaxQueuedBatches, 1, ctx,
        [](Napi::Env, void*, Context* c) { delete c; }, static_cast<void*>(nullptr));
  } catch (...) {
    delete ctx;
    ring_buffer__free(rb_);
    rb_ = nullptr;
    close(wake_fd_);
    close(map_fd_);
    wake_fd_ = map_fd_ = -1;
    throw;
  }

  batch_ = std::make_unique<Batch>();
  open_ = true;
  thread_ = std::thread(&RingBuffer::Run, this);
  napi_add_env_cleanup_hook(env_, OnEnvCleanup, this);
  hook_added_ = true;
  // An open ring buffer is reachable through its thread: keep the wrapper (and so the
  // thread's owner) alive until close().
  Napi::Reference<Napi::Object>::Ref();
  js_ref_held_ = true;
}

RingBuffer::~RingBuffer() { Shutdown(); }

int RingBuffer::OnSample(void* ctx, void* data, size_t size) {
  RingBuffer* self = static_cast<RingBuffer*>(ctx);
  Batch& b = *self->batch_;
  const uint8_t* p = static_cast<const uint8_t*>(data);
  b.data.insert(b.data.end(), p, p + size);
  b.offsets.push_back(static_cast<uint32_t>(b.data.size()));
  if (b.count() >= kMaxBatchEvents || b.data.size() >= kMaxBatchBytes) {
    self->batch_full_ = true;
    return kBatchFull;
  }
  return 0;
}

void RingBuffer::Run() {
  struct pollfd fds[2];
  fds[0].fd = ring_buffer__epoll_fd(rb_);
  fds[0].events = POLLIN;
  fds[1].fd = wake_fd_;
  fds[1].events = POLLIN;
  for (;;) {
    fds[0].revents = fds[1].revents = 0;
    int r = poll(fds, 2, kPollTimeoutMs);
    if (r < 0) {
      if (errno == EINTR) continue;
      state_->poll_errno = errno;
      return;
    }
    if (fds[1].revents != 0 || state_->closed.load()) return;
    // Also on timeout: samples submitted with BPF_RB_NO_WAKEUP never make the fd readable.
    if (!Drain()) return;
  }
}

// Consumes everything available, handing it to JS in batches; false when the thread
// should stop.
bool RingBuffer::Drain() {
  for (;;) {
    batch_full_ = false;
    int n = ring_buffer__consume(rb_);
    if (n < 0 && !batch_full_) {
      state_->poll_errno = -n;
      return false;
    }
    if (batch_->count() > 0) {
      size_t count = batch_->count();
      Batch* b = batch_.release();
      batch_ = std::make_unique<Batch>();
      napi_status st = tsfn_.NonBlockingCall(b);
      if (st == napi_queue_full) {
        delete b;
        state_->dropped += count;
        state_->dropped_batches++;
      } else if (st != napi_ok) {  // napi_closing: the environment is going away
        delete b;
        return false;
      }
    }
    if (!batch_full_) return true;
    if (state_->closed.load()) return false;
  }
}

void RingBuffer::CallJs(Napi::Env env, Napi::Function callback, Context* ctx, Batch* batch) {
  std::unique_ptr<Batch> b(batch);
  // env is null when the function is torn down with batches still queued.
  if (env == nullptr || ctx == nullptr || b == nullptr) return;
  State& st = **ctx;
  if (st.closed.load()) return;
  size_t count = b->count();
  Napi::Buffer<uint8_t> data = Napi::Buffer<uint8_t>::Copy(env, b->data.data(), b->data.size());
  Napi::Uint32Array offsets = Napi::Uint32Array::New(env, b->offsets.size());
  memcpy(offsets.Data(), b->offsets.data(), b->offsets.size() * sizeof(uint32_t));
  b.reset();
  st.delivered += count;
  st.delivered_batches++;
  try {
    callback.Call({data, offsets});
  } catch (const Napi::Error& e) {
    // A throwing onEvents becomes an 'uncaughtException', as for any event callback; left
    // pending, NAPI_VERSION 8 would only print a deprecation warning and drop it.
    napi_value v = e.Value();
    if (v != nullptr) napi_fatal_exception(env, v);
  }
}

// Stops the thread and frees everything; safe to call more than once, from close(), the
// finalizer or the environment's cleanup hook (so process exit never races the thread).
void RingBuffer::Shutdown() {
  if (!open_) return;
  open_ = false;
  state_->closed = true;
  uint64_t one = 1;
  ssize_t w = write(wake_fd_, &one, sizeof(one));
  (void)w;  // the closed flag stops the thread within one poll timeout anyway
  if (thread_.joinable()) thread_.join();
  ring_buffer__free(rb_);
  rb_ = nullptr;
  close(wake_fd_);
  close(map_fd_);
  wake_fd_ = map_fd_ = -1;
  tsfn_.Abort();
  if (hook_added_) {
    napi_remove_env_cleanup_hook(env_, OnEnvCleanup, this);
    hook_added_ = false;
  }
}

void RingBuffer::OnEnvCleanup(void* arg) {
  RingBuffer* self = static_cast<RingBuffer*>(arg);
  self->hook_added_ = false;
  self->Shutdown();
}

Napi::Value RingBuffer::Close(const Napi::CallbackInfo& info) {
  Shutdown();
  if (js_ref_held_) {
    js_ref_held_ = false;
    Napi::Reference<Napi::Object>::Unref();
  }
  return info.Env().Undefined();
}

Napi::Value RingBuffer::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("delivered", Napi::Number::New(env, static_cast<double>(state_->delivered.load())));
  o.Set("dropped", Napi::Number::New(env, static_cast<double>(state_->dropped.load())));
  o.Set("deliveredBatches",
        Napi::Number::New(env, static_cast<double>(state_->delivered_batches.load())));
  o.Set("droppedBatches",
        Napi::Number::New(env, static_cast<double>(state_->dropped_batches.load())));
  int err = state_->poll_errno.load();
  if (err != 0) {
    o.Set("error", Napi::String::New(env, "ring_buffer__consume(" + name_ + "): " +
                                              ErrnoText(err) + " (" + ErrnoName(err) + ")"));
  }
  return o;
}

Napi::Value RingBuffer::JsRef(const Napi::CallbackInfo& info) {
  if (open_) tsfn_.Ref(info.Env());
  return info.This();
}

Napi::Value RingBuffer::JsUnref(const Napi::CallbackInfo& info) {
  if (open_) tsfn_.Unref(info.Env());
  return info.This();
}

Napi::Value RingBuffer::IsClosed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !open_);
}

}  // namespace xdpids
