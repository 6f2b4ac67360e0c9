#include "bpf_map.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "common.h"

namespace xdpids {

namespace {

constexpr uint32_t kBatchChunk = 4096;
constexpr uint32_t kBatchChunkMax = 1u << 20;
constexpr double kMaxSafeInt = 9007199254740991.0;

bool IsPerCpu(uint32_t type) {
  switch (type) {
    case BPF_MAP_TYPE_PERCPU_HASH:
    case BPF_MAP_TYPE_PERCPU_ARRAY:
    case BPF_MAP_TYPE_LRU_PERCPU_HASH:
    case BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE:
      return true;
    default:
      return false;
  }
}

// Errors meaning "this map type has no batch operations" (LPM tries, ...).
bool BatchUnsupported(int err) { return err == EINVAL || err == 524 /* ENOTSUPP */ || err == EOPNOTSUPP; }

struct bpf_map_batch_opts BatchOpts(__u64 elem_flags) {
  struct bpf_map_batch_opts opts;
  memset(&opts, 0, sizeof(opts));
  opts.sz = sizeof(opts);
  opts.elem_flags = elem_flags;
  return opts;
}

std::string TypeName(uint32_t type) {
  const char* s = libbpf_bpf_map_type_str(static_cast<enum bpf_map_type>(type));
  return s != nullptr ? s : "unknown(" + std::to_string(type) + ")";
}

// Growable pair of raw arrays handed to JS as external Buffers without a final copy; or the
// caller's own pair of Buffers while they are large enough. Fresh memory costs a page fault per
// 4 KiB written: a fifth of the time to read 100,000 sources.
class KvOut {
 public:
  KvOut(size_t key_size, size_t value_size) : ks_(key_size), vs_(value_size) {}
  ~KvOut() {
    if (into_keys_.IsEmpty()) {
      free(keys_);
      free(values_);
    }
  }
  KvOut(const KvOut&) = delete;
  KvOut& operator=(const KvOut&) = delete;

  void ReadInto(Napi::Value keys_js, Bytes keys, Napi::Value values_js, Bytes values) {
    into_keys_ = keys_js;
    into_values_ = values_js;
    keys_ = const_cast<uint8_t*>(keys.data);  // lent to us for writing
    values_ = const_cast<uint8_t*>(values.data);
    cap_ = std::min(keys.len / ks_, values.len / vs_);
  }

  void Reserve(size_t n) {
    if (n <= cap_) return;
    size_t cap = std::max(n, cap_ * 2);
    if (!into_keys_.IsEmpty()) {  // the caller's Buffers are full: go on in our own memory
      uint8_t* keys = nullptr;
      uint8_t* values = nullptr;
      Grow(&keys, cap * ks_);
      Grow(&values, cap * vs_);
      memcpy(keys, keys_, count * ks_);
      memcpy(values, values_, count * vs_);
      keys_ = keys;
      values_ = values;
      into_keys_ = into_values_ = Napi::Value();
    } else {
      Grow(&keys_, cap * ks_);
      Grow(&values_, cap * vs_);
    }
    cap_ = cap;
  }
  size_t Room() const { return cap_ - count; }
  uint8_t* KeyAt(size_t i) { return keys_ + i * ks_; }
  uint8_t* ValueAt(size_t i) { return values_ + i * vs_; }
  size_t count = 0;

  // keys and values hold at least `count` entries: exactly that many unless they are the
  // caller's Buffers.
  Napi::Object ToJs(Napi::Env env) {
    Napi::Object out = Napi::Object::New(env);
    if (!into_keys_.IsEmpty()) {
      out.Set("keys", into_keys_);
      out.Set("values", into_values_);
    } else {
      out.Set("keys", Take(env, &keys_, count * ks_));
      out.Set("values", Take(env, &values_, count * vs_));
    }
    out.Set("count", Napi::Number::New(env, static_cast<double>(count)));
    return out;
  }

 private:
  static void Grow(uint8_t** p, size_t bytes) {
    if (bytes == 0) bytes = 1;
    void* np = realloc(*p, bytes);
    if (np == nullptr) throw std::bad_alloc();
    *p = static_cast<uint8_t*>(np);
  }
  static Napi::Buffer<uint8_t> Take(Napi::Env env, uint8_t** p, size_t bytes) {
    if (bytes == 0 || *p == nullptr) return Napi::Buffer<uint8_t>::New(env, 0);
    void* shrunk = realloc(*p, bytes);  // large blocks are mremap()ed, not copied
    uint8_t* data = static_cast<uint8_t*>(shrunk != nullptr ? shrunk : *p);
    *p = nullptr;
    return Napi::Buffer<uint8_t>::NewOrCopy(env, data, bytes,
                                            [](Napi::Env, uint8_t* d) { free(d); });
  }

  size_t ks_, vs_;
  size_t cap_ = 0;
  uint8_t* keys_ = nullptr;
  uint8_t* values_ = nullptr;
  Napi::Value into_keys_, into_values_;
};

// Entries in a flat keys buffer: the explicit count argument (the buffer must be long
// enough), else the buffer length over the key size.
size_t BatchCount(const Napi::CallbackInfo& info, size_t idx, const Bytes& keys, uint32_t key_size,
                  const char* op, const std::string& name, const char* what) {
  Napi::Env env = info.Env();
  if (ArgIsMissing(info, idx)) {
    if (key_size == 0 || keys.len % key_size != 0) {
      throw RangeErr(env, std::string(op) + "(" + name + "): " + what + " length " +
                                           std::to_string(keys.len) +
                                           " is not a multiple of the key size " +
                                           std::to_string(key_size));
    }
    return keys.len / key_size;
  }
  size_t count =
      static_cast<size_t>(ArgInt(info, idx, "count", 0, std::numeric_limits<uint32_t>::max()));
  if (count * key_size > keys.len) {
    throw RangeErr(env, std::string(op) + "(" + name + "): " +
                                         std::to_string(count) + " " + what + " need " +
                                         std::to_string(count * key_size) + " bytes, got " +
                                         std::to_string(keys.len));
  }
  return count;
}

int UpdateFlag(const Napi::CallbackInfo& info, size_t idx) {
  if (ArgIsMissing(info, idx)) return BPF_ANY;
  if (!info[idx].IsString()) {
    throw TypeErr(info.Env(), "flags must be 'any', 'noexist' or 'exist'");
  }
  std::string f = info[idx].As<Napi::String>().Utf8Value();
  if (f == "any") return BPF_ANY;
  if (f == "noexist") return BPF_NOEXIST;
  if (f == "exist") return BPF_EXIST;
  throw TypeErr(info.Env(),
                             "flags must be 'any', 'noexist' or 'exist', got '" + f + "'");
}

}  // namespace

Napi::Function BpfMap::Init(Napi::Env env) {
  return DefineClass(env, "BpfMap",
                     {
                         InstanceMethod<&BpfMap::Info>("info"),
                         InstanceMethod<&BpfMap::Lookup>("lookup"),
                         InstanceMethod<&BpfMap::Update>("update"),
                         InstanceMethod<&BpfMap::Delete>("delete"),
                         InstanceMethod<&BpfMap::GetNextKey>("getNextKey"),
                         InstanceMethod<&BpfMap::LookupBatch>("lookupBatch"),
                         InstanceMethod<&BpfMap::LookupAndDeleteBatch>("lookupAndDeleteBatch"),
                         InstanceMethod<&BpfMap::DeleteBatch>("deleteBatch"),
                         InstanceMethod<&BpfMap::UpdateBatch>("updateBatch"),
                         InstanceMethod<&BpfMap::Close>("close"),
                     });
}

BpfMap::BpfMap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfMap>(info) {
  Napi::Env env = info.Env();
  std::string source;
  if (info.Length() >= 1 && info[0].IsString()) {
    source = ArgString(info, 0, "pin path");
    int fd = bpf_obj_get(source.c_str());
    if (fd < 0) throw BpfError(env, "bpf_obj_get", source, PositiveErr(errno));
    fd_ = fd;
  } else {
    int64_t fd = ArgInt(info, 0, "fd", 0, std::numeric_limits<int32_t>::max());
    source = "fd " + std::to_string(fd);
    int dup = fcntl(static_cast<int>(fd), F_DUPFD_CLOEXEC, 3);
    if (dup < 0) throw BpfError(env, "dup", source, errno);
    fd_ = dup;
  }

  struct bpf_map_info mi;
  memset(&mi, 0, sizeof(mi));
  uint32_t len = sizeof(mi);
  int err = bpf_obj_get_info_by_fd(fd_, &mi, &len);
  if (err != 0) {
    int e = PositiveErr(err);
    close(fd_);
    fd_ = -1;
    throw BpfError(env, "bpf_obj_get_info_by_fd", source, e, "not a BPF map?");
  }
  if (!ArgIsMissing(info, 1)) {
    name_ = ArgString(info, 1, "name");
  } else {
    name_ = mi.name;
  }
  type_ = mi.type;
  key_size_ = mi.key_size;
  value_size_ = mi.value_size;
  max_entries_ = mi.max_entries;
  flags_ = mi.map_flags;
  id_ = mi.id;
  per_cpu_ = IsPerCpu(type_);
  value_buf_size_ = value_size_;
  if (per_cpu_) {
    int ncpu = libbpf_num_possible_cpus();
    if (ncpu < 0) {
      close(fd_);
      fd_ = -1;
      throw BpfError(env, "libbpf_num_possible_cpus", name_, PositiveErr(ncpu));
    }
    value_buf_size_ = static_cast<size_t>(ncpu) * ((value_size_ + 7u) & ~7u);
  }
}

BpfMap::~BpfMap() {
  if (fd_ >= 0) close(fd_);
}

void BpfMap::CheckOpen(Napi::Env env, const char* op) const {
  if (fd_ < 0) {
    throw BpfError(env, op, name_, EBADF, "the BpfMap is closed");
  }
}

const uint8_t* BpfMap::CheckKey(const Napi::CallbackInfo& info, size_t idx,
                                const char* op) const {
  Bytes key = ArgBytes(info, idx, "key");
  if (key.len != key_size_) {
    throw RangeErr(info.Env(), std::string(op) + "(" + name_ + "): key must be " +
                                                std::to_string(key_size_) + " bytes, got " +
                                                std::to_string(key.len));
  }
  return key.data;
}

Napi::Value BpfMap::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("fd", Napi::Number::New(env, fd_));
  o.Set("name", Napi::String::New(env, name_));
  o.Set("id", Napi::Number::New(env, id_));
  o.Set("type", Napi::Number::New(env, type_));
  o.Set("typeName", Napi::String::New(env, TypeName(type_)));
  o.Set("keySize", Napi::Number::New(env, key_size_));
  o.Set("valueSize", Napi::Number::New(env, value_size_));
  o.Set("maxEntries", Napi::Number::New(env, max_entries_));
  o.Set("flags", Napi::Number::New(env, flags_));
  o.Set("perCpu", Napi::Boolean::New(env, per_cpu_));
  o.Set("valueBufferSize", Napi::Number::New(env, static_cast<double>(value_buf_size_)));
  return o;
}

Napi::Value BpfMap::Lookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "bpf_map_lookup_elem");
  const uint8_t* key = CheckKey(info, 0, "bpf_map_lookup_elem");
  Napi::Buffer<uint8_t> value = Napi::Buffer<uint8_t>::New(env, value_buf_size_);
  int err = bpf_map_lookup_elem(fd_, key, value.Data());
  if (err == -ENOENT) return env.Undefined();
  if (err != 0) throw BpfError(env, "bpf_map_lookup_elem", name_, PositiveErr(err));
  return value;
}

Napi::Value BpfMap::Update(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "bpf_map_update_elem");
  const uint8_t* key = CheckKey(info, 0, "bpf_map_update_elem");
  Bytes value = ArgBytes(info, 1, "value");
  if (value.len != value_buf_size_) {
    throw RangeErr(
        env, "bpf_map_update_elem(" + name_ + "): value must be " +
                 std::to_string(value_buf_size_) + " bytes" +
                 (per_cpu_ ? " (possible CPUs x round_up(value size, 8))" : "") + ", got " +
                 std::to_string(value.len));
  }
  int flags = UpdateFlag(info, 2);
  int err = bpf_map_update_elem(fd_, key, value.data, flags);
  if (err != 0) throw BpfError(env, "bpf_map_update_elem", name_, PositiveErr(err));
  return env.Undefined();
}

Napi::Value BpfMap::Delete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "bpf_map_delete_elem");
  const uint8_t* key = CheckKey(info, 0, "bpf_map_delete_elem");
  int err = bpf_map_delete_elem(fd_, key);
  if (err == -ENOENT) return Napi::Boolean::New(env, false);
  if (err != 0) throw BpfError(env, "bpf_map_delete_elem", name_, PositiveErr(err));
  return Napi::Boolean::New(env, true);
}

Napi::Value BpfMap::GetNextKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "bpf_map_get_next_key");
  const uint8_t* key = nullptr;
  if (!ArgIsMissing(info, 0) && !info[0].IsNull()) key = CheckKey(info, 0, "bpf_map_get_next_key");
  Napi::Buffer<uint8_t> next = Napi::Buffer<uint8_t>::New(env, key_size_);
  int err = bpf_map_get_next_key(fd_, key, next.Data());
  if (err == -ENOENT) return env.Undefined();
  if (err != 0) throw BpfError(env, "bpf_map_get_next_key", name_, PositiveErr(err));
  return next;
}

Napi::Value BpfMap::LookupBatch(const Napi::CallbackInfo& info) { return BatchRead(info, false); }

Napi::Value BpfMap::LookupAndDeleteBatch(const Napi::CallbackInfo& info) {
  return BatchRead(info, true);
}

// Reads the whole map (or maxCount entries) in kBatchChunk-sized syscalls into two flat
// arrays. Map types without batch support are walked with get_next_key + lookup instead.
Napi::Value BpfMap::BatchRead(const Napi::CallbackInfo& info, bool andDelete) {
  Napi::Env env = info.Env();
  const char* op = andDelete ? "bpf_map_lookup_and_delete_batch" : "bpf_map_lookup_batch";
  CheckOpen(env, op);
  size_t max_count = std::numeric_limits<size_t>::max();
  if (!ArgIsMissing(info, 0)) {
    max_count = static_cast<size_t>(ArgInt(info, 0, "maxCount", 0, static_cast<int64_t>(kMaxSafeInt)));
  }

  KvOut out(key_size_, value_buf_size_);
  if (!ArgIsMissing(info, 1)) {
    out.ReadInto(info[1], ArgBytes(info, 1, "keys"), info[2], ArgBytes(info, 2, "values"));
  }
  if (max_count == 0) return out.ToJs(env);

  std::vector<uint8_t> token_in(std::max<size_t>(key_size_, 8));
  std::vector<uint8_t> token_out(token_in.size());
  struct bpf_map_batch_opts opts = BatchOpts(0);
  uint32_t chunk = kBatchChunk;
  bool first = true;
  bool fallback = false;

  while (out.count < max_count) {
    uint32_t want = static_cast<uint32_t>(std::min<size_t>(chunk, max_count - out.count));
    // Fill the caller's buffers to the brim before spilling over into our own memory.
    bool by_room = out.Room() > 0 && out.Room() < want;
    if (by_room) want = static_cast<uint32_t>(out.Room());
    out.Reserve(out.count + want);
    uint32_t got = want;
    void* in = first ? nullptr : token_in.data();
    int err = andDelete
                  ? bpf_map_lookup_and_delete_batch(fd_, in, token_out.data(), out.KeyAt(out.count),
                                                    out.ValueAt(out.count), &got, &opts)
                  : bpf_map_lookup_batch(fd_, in, token_out.data(), out.KeyAt(out.count),
                                         out.ValueAt(out.count), &got, &opts);
    err = PositiveErr(err);
    if (err != 0 && err != ENOENT) {
      if (err == ENOSPC && got == 0) {
        // One hash bucket holds more entries than fit in this call.
        if (by_room) {
          out.Reserve(out.count + chunk);
          continue;
        }
        if (want < chunk || chunk >= kBatchChunkMax) break;
        chunk *= 2;
        continue;
      }
      if (first && out.count == 0 && BatchUnsupported(err)) {
        fallback = true;
        break;
      }
      throw BpfError(env, op, name_, err,
                     std::to_string(out.count) + " entries were read before the error");
    }
    out.count += got;
    if (err == ENOENT) break;
    std::swap(token_in, token_out);
    first = false;
  }
  if (!fallback) return out.ToJs(env);

  // A map holds at most max_entries entries; the bounds also stop a walk that keeps
  // restarting because its current key was deleted concurrently.
  size_t limit = std::min<size_t>(max_count, max_entries_);
  size_t steps_left = 2 * static_cast<size_t>(max_entries_) + 16;
  std::vector<uint8_t> cur(key_size_);
  bool have_cur = false;
  while (out.count < limit && steps_left-- > 0) {
    out.Reserve(out.count + 1);
    uint8_t* key = out.KeyAt(out.count);
    int err = bpf_map_get_next_key(fd_, have_cur ? cur.data() : nullptr, key);
    if (err == -ENOENT) break;
    if (err != 0) throw BpfError(env, "bpf_map_get_next_key", name_, PositiveErr(err));
    memcpy(cur.data(), key, key_size_);
    have_cur = true;
    err = bpf_map_lookup_elem(fd_, key, out.ValueAt(out.count));
    if (err == -ENOENT) continue;  // deleted since get_next_key
    if (err != 0) throw BpfError(env, "bpf_map_lookup_elem", name_, PositiveErr(err));
    out.count++;
  }
  if (andDelete) {
    for (size_t i = 0; i < out.count; i++) {
      int err = bpf_map_delete_elem(fd_, out.KeyAt(i));
      if (err != 0 && err != -ENOENT) {
        throw BpfError(env, "bpf_map_delete_elem", name_, PositiveErr(err),
                       std::to_string(i) + " of " + std::to_string(out.count) +
                           " read entries were deleted before the error");
      }
    }
  }
  return out.ToJs(env);
}

// Keys that are already gone are skipped; returns how many were deleted.
Napi::Value BpfMap::DeleteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "bpf_map_delete_batch");
  Bytes keys = ArgBytes(info, 0, "keys");
  size_t count = BatchCount(info, 1, keys, key_size_, "bpf_map_delete_batch", name_, "keys");
  struct bpf_map_batch_opts opts = BatchOpts(0);
  size_t done = 0, deleted = 0;
  bool fallback = false;
  while (done < count) {
    uint32_t n = static_cast<uint32_t>(std::min<size_t>(count - done, kBatchChunkMax));
    uint32_t got = n;
    int err = PositiveErr(bpf_map_delete_batch(fd_, keys.data + done * key_size_, &got, &opts));
    if (err == 0) {
      done += n;
      deleted += n;
      continue;
    }
    if (got > n) got = n;
    if (err == ENOENT) {  // keys[done + got] is missing: skip it
      done += got + 1;
      deleted += got;
      continue;
    }
    if (done == 0 && BatchUnsupported(err)) {
      fallback = true;
      break;
    }
    throw BpfError(env, "bpf_map_delete_batch", name_, err,
                   std::to_string(deleted + got) + " of " + std::to_string(count) +
                       " keys were deleted before the error");
  }
  if (fallback) {
    for (size_t i = 0; i < count; i++) {
      int err = bpf_map_delete_elem(fd_, keys.data + i * key_size_);
      if (err == -ENOENT) continue;
      if (err != 0) {
        throw BpfError(env, "bpf_map_delete_elem", name_, PositiveErr(err),
                       std::to_string(deleted) + " of " + std::to_string(count) +
                           " keys were deleted before the error");
      }
      deleted++;
    }
  }
  return Napi::Number::New(env, static_cast<double>(deleted));
}

Napi::Value BpfMap::UpdateBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "bpf_map_update_batch");
  Bytes keys = ArgBytes(info, 0, "keys");
  Bytes values = ArgBytes(info, 1, "values");
  size_t count = BatchCount(info, 2, keys, key_size_, "bpf_map_update_batch", name_, "keys");
  if (count * value_buf_size_ > values.len) {
    throw RangeErr(env, "bpf_map_update_batch(" + name_ + "): " +
                                         std::to_string(count) + " values need " +
                                         std::to_string(count * value_buf_size_) +
                                         " bytes, got " + std::to_string(values.len));
  }
  int flags = UpdateFlag(info, 3);
  struct bpf_map_batch_opts opts = BatchOpts(static_cast<__u64>(flags));
  size_t done = 0;
  bool fallback = false;
  while (done < count) {
    uint32_t n = static_cast<uint32_t>(std::min<size_t>(count - done, kBatchChunkMax));
    uint32_t got = n;
    int err = PositiveErr(bpf_map_update_batch(fd_, keys.data + done * key_size_,
                                               values.data + done * value_buf_size_, &got, &opts));
    if (err == 0) {
      done += n;
      continue;
    }
    if (done == 0 && BatchUnsupported(err)) {
      fallback = true;
      break;
    }
    throw BpfError(env, "bpf_map_update_batch", name_, err,
                   std::to_string(done + std::min(got, n)) + " of " + std::to_string(count) +
                       " entries were updated before the error");
  }
  if (fallback) {
    for (size_t i = 0; i < count; i++) {
      int err = bpf_map_update_elem(fd_, keys.data + i * key_size_,
                                    values.data + i * value_buf_size_, flags);
      if (err != 0) {
        throw BpfError(env, "bpf_map_update_elem", name_, PositiveErr(err),
                       std::to_string(i) + " of " + std::to_string(count) +
                           " entries were updated before the error");
      }
    }
  }
  return env.Undefined();
}

Napi::Value BpfMap::Close(const Napi::CallbackInfo& info) {
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
  return info.Env().Undefined();
}

}  // namespace xdpids
