#include "bpf_object.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <net/if.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "common.h"

namespace xdpids {

namespace {

constexpr const char* kBpffsRoot = "/sys/fs/bpf";
constexpr size_t kTestRunOutMin = 64 * 1024;

bool IsBpffs(const std::string& path) {
  struct statfs st;
  if (statfs(path.c_str(), &st) != 0) return false;
  return static_cast<unsigned long>(st.f_type) == static_cast<unsigned long>(BPF_FS_MAGIC);
}

void MkdirP(Napi::Env env, const std::string& path) {
  for (size_t pos = 1; pos <= path.size(); pos++) {
    if (pos != path.size() && path[pos] != '/') continue;
    std::string part = path.substr(0, pos);
    if (mkdir(part.c_str(), 0700) == 0) continue;
    int err = errno;
    struct stat st;
    if (err == EEXIST && stat(part.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
    throw BpfError(env, "mkdir", part, err == EEXIST ? ENOTDIR : err,
                   "cannot create pin directory " + path);
  }
}

// Creates pinDir (mounting bpffs on /sys/fs/bpf first when needed) and checks that it is on
// a bpf filesystem, where pinning works.
void PreparePinDir(Napi::Env env, const std::string& dir) {
  const std::string root = kBpffsRoot;
  if ((dir == root || dir.rfind(root + "/", 0) == 0) && !IsBpffs(root)) {
    MkdirP(env, root);
    if (mount("bpf", kBpffsRoot, "bpf", 0, "mode=0700") != 0) {
      throw BpfError(env, "mount", std::string("bpf on ") + kBpffsRoot, errno,
                     "pinning maps needs a bpf filesystem (try: mount -t bpf bpf /sys/fs/bpf)");
    }
  }
  MkdirP(env, dir);
  if (!IsBpffs(dir)) {
    throw BpfError(env, "statfs", dir, EINVAL,
                   "pinDir is not on a bpf filesystem (mount -t bpf bpf <dir>)");
  }
}

std::string IfDesc(int ifindex) {
  char name[IF_NAMESIZE] = {0};
  std::string s = "ifindex " + std::to_string(ifindex);
  if (if_indextoname(static_cast<unsigned>(ifindex), name) != nullptr) {
    s += " (" + std::string(name) + ")";
  }
  return s;
}

int ArgIfindex(const Napi::CallbackInfo& info) {
  return static_cast<int>(ArgInt(info, 0, "ifindex", 1, std::numeric_limits<int32_t>::max()));
}

void CheckIfExists(Napi::Env env, int ifindex, const char* op) {
  char name[IF_NAMESIZE];
  if (if_indextoname(static_cast<unsigned>(ifindex), name) == nullptr) {
    throw BpfError(env, op, "ifindex " + std::to_string(ifindex), errno == ENXIO ? ENODEV : errno);
  }
}

struct bpf_xdp_query_opts QueryOrThrow(Napi::Env env, int ifindex) {
  struct bpf_xdp_query_opts q;
  memset(&q, 0, sizeof(q));
  q.sz = sizeof(q);
  LogCapture cap;
  int err = bpf_xdp_query(ifindex, 0, &q);
  if (err != 0) {
    throw BpfError(env, "bpf_xdp_query", IfDesc(ifindex), PositiveErr(err), "", cap.text());
  }
  return q;
}

const char* AttachModeName(uint8_t mode) {
  switch (mode) {
    case XDP_ATTACHED_NONE:
      return "none";
    case XDP_ATTACHED_DRV:
      return "native";
    case XDP_ATTACHED_SKB:
      return "generic";
    case XDP_ATTACHED_HW:
      return "offload";
    case XDP_ATTACHED_MULTI:
      return "multi";
    default:
      return "unknown";
  }
}

std::string ErrnoSummary(int err) { return ErrnoText(err) + " (" + ErrnoName(err) + ")"; }

// Our filter's place in the interface's clsact egress hook: fixed, so that a restarted sensor
// (or detachTcEgress after a crash) finds and replaces exactly it and nobody else's.
constexpr uint32_t kTcHandle = 0x1d5;
constexpr uint32_t kTcPriority = 0x1d5;

struct bpf_tc_hook EgressHook(int ifindex) {
  struct bpf_tc_hook hook;
  memset(&hook, 0, sizeof(hook));
  hook.sz = sizeof(hook);
  hook.ifindex = ifindex;
  hook.attach_point = BPF_TC_EGRESS;
  return hook;
}

struct bpf_tc_opts EgressOpts(int prog_fd, uint32_t flags) {
  struct bpf_tc_opts opts;
  memset(&opts, 0, sizeof(opts));
  opts.sz = sizeof(opts);
  opts.handle = kTcHandle;
  opts.priority = kTcPriority;
  opts.prog_fd = prog_fd;
  opts.flags = flags;
  return opts;
}

}  // namespace

Napi::Function BpfObject::Init(Napi::Env env) {
  return DefineClass(env, "BpfObject",
                     {
                         InstanceMethod<&BpfObject::Load>("load"),
                         InstanceMethod<&BpfObject::Close>("close"),
                         InstanceAccessor<&BpfObject::Name>("name"),
                         InstanceAccessor<&BpfObject::Log>("log"),
                         InstanceAccessor<&BpfObject::IsLoaded>("loaded"),
                         InstanceAccessor<&BpfObject::IsClosed>("closed"),
                         InstanceMethod<&BpfObject::Programs>("programs"),
                         InstanceMethod<&BpfObject::ProgramFd>("programFd"),
                         InstanceMethod<&BpfObject::Maps>("maps"),
                         InstanceMethod<&BpfObject::MapFd>("mapFd"),
                         InstanceMethod<&BpfObject::MapInfo>("mapInfo"),
                         InstanceMethod<&BpfObject::AttachXdp>("attachXdp"),
                         InstanceMethod<&BpfObject::AttachTcEgress>("attachTcEgress"),
                         InstanceMethod<&BpfObject::TestRun>("testRun"),
                         StaticMethod<&BpfObject::DetachXdp>("detachXdp"),
                         StaticMethod<&BpfObject::DetachTcEgress>("detachTcEgress"),
                         StaticMethod<&BpfObject::QueryXdp>("queryXdp"),
                     });
}

BpfObject::BpfObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfObject>(info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0, "path");
  Napi::Object opts = ArgOptions(info, 1, "options");

  std::string pin_dir;
  Napi::Value pin_v = opts.Get("pinDir");
  if (!pin_v.IsUndefined()) {
    if (!pin_v.IsString()) throw TypeErr(env, "options.pinDir must be a string");
    pin_dir = pin_v.As<Napi::String>().Utf8Value();
    while (pin_dir.size() > 1 && pin_dir.back() == '/') pin_dir.pop_back();
    if (pin_dir.empty() || pin_dir[0] != '/') {
      throw TypeErr(env, "options.pinDir must be an absolute path");
    }
  }
  Napi::Value max_v = opts.Get("maxEntries");
  if (!max_v.IsUndefined() && (!max_v.IsObject() || max_v.IsArray())) {
    throw TypeErr(env, "options.maxEntries must be an object of map name -> entries");
  }

  if (!pin_dir.empty()) PreparePinDir(env, pin_dir);

  LogCapture cap;
  struct bpf_object_open_opts oo;
  memset(&oo, 0, sizeof(oo));
  oo.sz = sizeof(oo);
  if (!pin_dir.empty()) oo.pin_root_path = pin_dir.c_str();
  struct bpf_object* raw = bpf_object__open_file(path.c_str(), &oo);
  if (raw == nullptr) {
    int err = errno;
    throw BpfError(env, "bpf_object__open_file", path, err, "", cap.text());
  }
  std::unique_ptr<struct bpf_object, void (*)(struct bpf_object*)> obj(raw, bpf_object__close);
  name_ = bpf_object__name(raw);

  std::vector<std::string> map_names;
  struct bpf_map* map;
  bpf_object__for_each_map(map, raw) { map_names.push_back(bpf_map__name(map)); }

  if (max_v.IsObject()) {
    Napi::Object max_entries = max_v.As<Napi::Object>();
    Napi::Array keys = max_entries.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); i++) {
      std::string map_name = keys.Get(i).ToString().Utf8Value();
      uint32_t n = static_cast<uint32_t>(ValueInt(env, max_entries.Get(map_name),
                                                  "options.maxEntries." + map_name, 1,
                                                  std::numeric_limits<uint32_t>::max()));
      struct bpf_map* m = bpf_object__find_map_by_name(raw, map_name.c_str());
      if (m == nullptr) {
        throw BpfError(env, "bpf_object__find_map_by_name", map_name, ENOENT,
                       "object '" + name_ + "' has maps: " + Join(map_names, ", "), cap.text());
      }
      int err = bpf_map__set_max_entries(m, n);
      if (err != 0) {
        throw BpfError(env, "bpf_map__set_max_entries", map_name, PositiveErr(err), "", cap.text());
      }
    }
  }

  if (!pin_dir.empty()) {
    // Internal maps (.rodata, .data, .bss, .kconfig) are not pinned: libbpf does not
    // re-initialise a reused map, so a pinned .rodata would silently keep the constants of
    // whichever object version created it.
    bpf_object__for_each_map(map, raw) {
      if (bpf_map__is_internal(map)) continue;
      std::string pin_path = pin_dir + "/" + bpf_map__name(map);
      int err = bpf_map__set_pin_path(map, pin_path.c_str());
      if (err != 0) {
        throw BpfError(env, "bpf_map__set_pin_path", pin_path, PositiveErr(err), "", cap.text());
      }
    }
  }

  obj_ = obj.release();
  log_ = cap.text();
}

BpfObject::~BpfObject() {
  if (obj_ != nullptr) bpf_object__close(obj_);
}

void BpfObject::CheckOpen(Napi::Env env, const char* op) const {
  if (obj_ == nullptr) throw BpfError(env, op, name_, EBADF, "the BpfObject is closed");
}

Napi::Value BpfObject::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "bpf_object__load");
  LogCapture cap;
  int err = bpf_object__load(obj_);
  log_ += cap.text();
  if (err != 0) throw BpfError(env, "bpf_object__load", name_, PositiveErr(err), "", cap.text());
  loaded_ = true;
  return env.Undefined();
}

Napi::Value BpfObject::Close(const Napi::CallbackInfo& info) {
  if (obj_ != nullptr) {
    bpf_object__close(obj_);
    obj_ = nullptr;
    loaded_ = false;
  }
  return info.Env().Undefined();
}

Napi::Value BpfObject::Name(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), name_);
}

Napi::Value BpfObject::Log(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), log_);
}

Napi::Value BpfObject::IsLoaded(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), loaded_);
}

Napi::Value BpfObject::IsClosed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), obj_ == nullptr);
}

Napi::Value BpfObject::Programs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "programs");
  Napi::Array out = Napi::Array::New(env);
  struct bpf_program* prog;
  uint32_t i = 0;
  bpf_object__for_each_program(prog, obj_) { out.Set(i++, bpf_program__name(prog)); }
  return out;
}

// The first program when name is null.
struct bpf_program* BpfObject::FindProgram(Napi::Env env, const std::string* name,
                                           const char* op) const {
  CheckOpen(env, op);
  if (name == nullptr) {
    struct bpf_program* first = bpf_object__next_program(obj_, nullptr);
    if (first == nullptr) {
      throw BpfError(env, op, name_, ENOENT, "object '" + name_ + "' has no programs");
    }
    return first;
  }
  struct bpf_program* prog = bpf_object__find_program_by_name(obj_, name->c_str());
  if (prog == nullptr) {
    std::vector<std::string> names;
    struct bpf_program* p;
    bpf_object__for_each_program(p, obj_) { names.push_back(bpf_program__name(p)); }
    throw BpfError(env, "bpf_object__find_program_by_name", *name, ENOENT,
                   "object '" + name_ + "' has programs: " + Join(names, ", "));
  }
  return prog;
}

int BpfObject::LoadedProgramFd(Napi::Env env, const std::string* name, const char* op,
                               std::string* found) const {
  struct bpf_program* prog = FindProgram(env, name, op);
  *found = bpf_program__name(prog);
  int fd = bpf_program__fd(prog);
  if (fd < 0) {
    throw BpfError(env, "bpf_program__fd", *found, EINVAL,
                   "object '" + name_ + "' is not loaded; call load() first");
  }
  return fd;
}

// Optional program-name argument.
static std::unique_ptr<std::string> OptName(const Napi::CallbackInfo& info, size_t idx) {
  if (ArgIsMissing(info, idx)) return nullptr;
  return std::make_unique<std::string>(ArgString(info, idx, "program name"));
}

Napi::Value BpfObject::ProgramFd(const Napi::CallbackInfo& info) {
  std::string found;
  auto name = OptName(info, 0);
  return Napi::Number::New(info.Env(), LoadedProgramFd(info.Env(), name.get(), "programFd", &found));
}

Napi::Value BpfObject::Maps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "maps");
  Napi::Array out = Napi::Array::New(env);
  struct bpf_map* map;
  uint32_t i = 0;
  bpf_object__for_each_map(map, obj_) { out.Set(i++, bpf_map__name(map)); }
  return out;
}

struct bpf_map* BpfObject::FindMap(Napi::Env env, const std::string& name, const char* op) const {
  CheckOpen(env, op);
  struct bpf_map* map = bpf_object__find_map_by_name(obj_, name.c_str());
  if (map == nullptr) {
    std::vector<std::string> names;
    struct bpf_map* m;
    bpf_object__for_each_map(m, obj_) { names.push_back(bpf_map__name(m)); }
    throw BpfError(env, "bpf_object__find_map_by_name", name, ENOENT,
                   "object '" + name_ + "' has maps: " + Join(names, ", "));
  }
  return map;
}

Napi::Value BpfObject::MapFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 0, "map name");
  struct bpf_map* map = FindMap(env, name, "mapFd");
  int fd = bpf_map__fd(map);
  if (fd < 0) {
    throw BpfError(env, "bpf_map__fd", name, EINVAL,
                   "object '" + name_ + "' is not loaded; call load() first");
  }
  return Napi::Number::New(env, fd);
}

Napi::Value BpfObject::MapInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 0, "map name");
  struct bpf_map* map = FindMap(env, name, "mapInfo");
  Napi::Object o = Napi::Object::New(env);
  enum bpf_map_type type = bpf_map__type(map);
  const char* type_name = libbpf_bpf_map_type_str(type);
  o.Set("fd", Napi::Number::New(env, bpf_map__fd(map)));
  o.Set("type", Napi::Number::New(env, type));
  o.Set("typeName", Napi::String::New(env, type_name != nullptr ? type_name : "unknown"));
  o.Set("keySize", Napi::Number::New(env, bpf_map__key_size(map)));
  o.Set("valueSize", Napi::Number::New(env, bpf_map__value_size(map)));
  o.Set("maxEntries", Napi::Number::New(env, bpf_map__max_entries(map)));
  const char* pin = bpf_map__pin_path(map);
  if (pin != nullptr) o.Set("pinPath", Napi::String::New(env, pin));
  o.Set("internal", Napi::Boolean::New(env, bpf_map__is_internal(map)));
  return o;
}

Napi::Value BpfObject::AttachXdp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex = ArgIfindex(info);
  std::string mode = ArgString(info, 1, "mode");
  if (mode != "native" && mode != "generic" && mode != "auto") {
    throw TypeErr(env, "mode must be 'native', 'generic' or 'auto', got '" + mode + "'");
  }
  std::string prog_name;
  auto wanted = OptName(info, 2);
  int fd = LoadedProgramFd(env, wanted.get(), "bpf_xdp_attach", &prog_name);
  std::string target = prog_name + " on " + IfDesc(ifindex);

  auto attach = [&](uint32_t flags, std::string* log) {
    LogCapture cap;
    int err = bpf_xdp_attach(ifindex, fd, flags, nullptr);
    *log = cap.text();
    return PositiveErr(err);
  };

  std::string log;
  if (mode == "native" || mode == "generic") {
    bool native = mode == "native";
    int err = attach(native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE, &log);
    if (err != 0) throw BpfError(env, "bpf_xdp_attach", target, err, mode + " mode", log);
    return Napi::String::New(env, mode);
  }
  int native_err = attach(XDP_FLAGS_DRV_MODE, &log);
  if (native_err == 0) return Napi::String::New(env, "native");
  std::string native_log = log;
  int generic_err = attach(XDP_FLAGS_SKB_MODE, &log);
  if (generic_err == 0) {
    log_ += "native XDP failed on " + IfDesc(ifindex) + ": " + ErrnoSummary(native_err) +
            "; fell back to generic\n" + native_log;
    return Napi::String::New(env, "generic");
  }
  throw BpfError(env, "bpf_xdp_attach", target, generic_err,
                 "generic mode; native mode failed first with " + ErrnoSummary(native_err),
                 native_log + log);
}

Napi::Value BpfObject::AttachTcEgress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex = ArgIfindex(info);
  std::string prog_name;
  auto wanted = OptName(info, 1);
  int fd = LoadedProgramFd(env, wanted.get(), "bpf_tc_attach", &prog_name);
  std::string target = prog_name + " on " + IfDesc(ifindex) + " egress";
  struct bpf_tc_hook hook = EgressHook(ifindex);
  LogCapture cap;
  // The clsact qdisc may exist already (another tool's filters, or our earlier run): keep it.
  int err = bpf_tc_hook_create(&hook);
  if (err != 0 && err != -EEXIST) {
    throw BpfError(env, "bpf_tc_hook_create", target, PositiveErr(err), "", cap.text());
  }
  struct bpf_tc_opts opts = EgressOpts(fd, BPF_TC_F_REPLACE);
  err = bpf_tc_attach(&hook, &opts);
  if (err != 0) throw BpfError(env, "bpf_tc_attach", target, PositiveErr(err), "", cap.text());
  return env.Undefined();
}

Napi::Value BpfObject::DetachTcEgress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex = ArgIfindex(info);
  CheckIfExists(env, ifindex, "bpf_tc_detach");
  struct bpf_tc_hook hook = EgressHook(ifindex);
  struct bpf_tc_opts opts = EgressOpts(0, 0);
  LogCapture cap;
  int err = bpf_tc_detach(&hook, &opts);
  // No clsact qdisc, or no filter of ours in it: nothing to detach.
  if (err == -ENOENT || err == -EINVAL) return Napi::Boolean::New(env, false);
  if (err != 0) {
    throw BpfError(env, "bpf_tc_detach", IfDesc(ifindex) + " egress", PositiveErr(err), "", cap.text());
  }
  return Napi::Boolean::New(env, true);
}

Napi::Value BpfObject::DetachXdp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex = ArgIfindex(info);
  std::string mode = "auto";
  if (!ArgIsMissing(info, 1)) mode = ArgString(info, 1, "mode");
  if (mode != "native" && mode != "generic" && mode != "auto") {
    throw TypeErr(env, "mode must be 'native', 'generic' or 'auto', got '" + mode + "'");
  }
  CheckIfExists(env, ifindex, "bpf_xdp_detach");
  struct bpf_xdp_query_opts q = QueryOrThrow(env, ifindex);

  std::vector<std::pair<uint32_t, const char*>> todo;
  if (mode != "generic" && q.drv_prog_id != 0) todo.emplace_back(XDP_FLAGS_DRV_MODE, "native");
  if (mode != "native" && q.skb_prog_id != 0) todo.emplace_back(XDP_FLAGS_SKB_MODE, "generic");
  if (mode == "auto" && q.hw_prog_id != 0) todo.emplace_back(XDP_FLAGS_HW_MODE, "offload");
  for (const auto& t : todo) {
    LogCapture cap;
    int err = bpf_xdp_detach(ifindex, t.first, nullptr);
    if (err != 0) {
      throw BpfError(env, "bpf_xdp_detach", IfDesc(ifindex), PositiveErr(err),
                     std::string(t.second) + " mode", cap.text());
    }
  }
  return Napi::Boolean::New(env, !todo.empty());
}

Napi::Value BpfObject::QueryXdp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex = ArgIfindex(info);
  CheckIfExists(env, ifindex, "bpf_xdp_query");
  struct bpf_xdp_query_opts q = QueryOrThrow(env, ifindex);
  uint32_t prog_id = q.prog_id;
  if (prog_id == 0) prog_id = q.drv_prog_id != 0 ? q.drv_prog_id : q.skb_prog_id;
  if (prog_id == 0) prog_id = q.hw_prog_id;
  Napi::Object o = Napi::Object::New(env);
  o.Set("progId", Napi::Number::New(env, prog_id));
  o.Set("mode", Napi::String::New(env, AttachModeName(q.attach_mode)));
  o.Set("nativeProgId", Napi::Number::New(env, q.drv_prog_id));
  o.Set("genericProgId", Napi::Number::New(env, q.skb_prog_id));
  o.Set("offloadProgId", Napi::Number::New(env, q.hw_prog_id));
  return o;
}

Napi::Value BpfObject::TestRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Bytes data = ArgBytes(info, 0, "data");
  Napi::Object opts = ArgOptions(info, 1, "options");
  int repeat = 1;
  Napi::Value repeat_v = opts.Get("repeat");
  if (!repeat_v.IsUndefined()) {
    repeat = static_cast<int>(
        ValueInt(env, repeat_v, "options.repeat", 1, std::numeric_limits<int32_t>::max()));
  }
  if (data.len > std::numeric_limits<uint32_t>::max() / 2) {
    throw RangeErr(env, "data is too large");
  }
  Napi::Value prog_v = opts.Get("programName");
  std::unique_ptr<std::string> wanted;
  if (!prog_v.IsUndefined()) {
    if (!prog_v.IsString()) throw TypeErr(env, "options.programName must be a string");
    wanted = std::make_unique<std::string>(prog_v.As<Napi::String>().Utf8Value());
  }
  std::string prog_name;
  int fd = LoadedProgramFd(env, wanted.get(), "bpf_prog_test_run_opts", &prog_name);

  // Room for programs that grow the packet (bpf_xdp_adjust_tail, frags); re-running on
  // ENOSPC would repeat the program's side effects, so there is no retry.
  std::vector<uint8_t> out(std::max(kTestRunOutMin, data.len + 4096));
  struct bpf_test_run_opts o;
  memset(&o, 0, sizeof(o));
  o.sz = sizeof(o);
  o.data_in = data.data;
  o.data_size_in = static_cast<uint32_t>(data.len);
  o.data_out = out.data();
  o.data_size_out = static_cast<uint32_t>(out.size());
  o.repeat = repeat;
  int err = bpf_prog_test_run_opts(fd, &o);
  if (err != 0) {
    int e = PositiveErr(err);
    std::string detail = "program " + prog_name + ", " + std::to_string(data.len) + " bytes in";
    if (e == ENOSPC) detail += ", " + std::to_string(o.data_size_out) + " bytes out";
    throw BpfError(env, "bpf_prog_test_run_opts", prog_name, e, detail);
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("retval", Napi::Number::New(env, o.retval));
  r.Set("durationNs", Napi::Number::New(env, o.duration));
  r.Set("dataOut", Napi::Buffer<uint8_t>::Copy(env, out.data(),
                                               std::min<size_t>(o.data_size_out, out.size())));
  return r;
}

}  // namespace xdpids
