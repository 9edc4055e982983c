// The one CPU engine, and per JS thread (the main thread, each worker thread that loads the
// addon) a context: its stream, scratchpad, primitive cache and OpenMP team (every core, or
// RESNET_NUM_THREADS as the thread loads the addon, or setThreads()); flush-to-zero /
// denormals-are-zero; and the guard that turns C++ failures into JS errors. A JS thread calls
// in synchronously, so a context is only ever used by its own thread; two threads run side
// by side, each with its own OpenMP team (libgomp keeps a pool per thread that starts
// parallel regions), as `resnet serve --streams` does. What the threads share is thread-safe:
// the engine (oneDNN's), the buffer pool (a mutex, buffers.cc), primitives (executed with
// each context's own scratchpad).
#include "common.h"

#include <omp.h>
#include <pmmintrin.h>
#include <xmmintrin.h>

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>

namespace rn {

namespace {

// Leaked on purpose: no destructor ordering against oneDNN or Node at process exit.
dnnl::engine* gEngine = nullptr;
std::once_flag gEngineOnce;

/// One JS thread's state. Leaked when its thread ends (a few hundred bytes once its cache and
/// scratchpad are released by the env's cleanup hook, releaseThreadContext): storages that
/// V8 finalizes after that hook still account into it.
struct Context {
  explicit Context(const dnnl::engine& e) : stream(e) {}
  dnnl::stream stream;
  std::unordered_map<std::string, std::shared_ptr<void>> cache;
  void* scratch = nullptr;
  size_t scratchBytes = 0;
};
thread_local Context* tContext = nullptr;

Context& ctx() { return *tContext; }

constexpr size_t kCacheMax = 4096;
constexpr unsigned kFtzDaz = 0x8040;  // MXCSR bits: FTZ (15) | DAZ (6)

void setFtzDaz() {
  _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
  _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
}

const char* statusName(dnnl_status_t s) {
  switch (s) {
    case dnnl_out_of_memory: return "out of memory";
    case dnnl_invalid_arguments: return "invalid arguments";
    case dnnl_unimplemented: return "unimplemented";
    case dnnl_iterator_ends: return "no implementation";
    case dnnl_runtime_error: return "runtime error";
    case dnnl_not_required: return "not required";
    default: return "error";
  }
}

/// This thread's OpenMP team: n threads (omp_set_num_threads sets the calling thread's
/// value only), each with FTZ/DAZ for good (libgomp keeps its threads); the calling thread
/// (OpenMP's thread 0) gets them only inside native calls (FtzScope).
void setTeam(int n) {
  omp_set_num_threads(n);
  const unsigned callerCsr = _mm_getcsr();
#pragma omp parallel
  { setFtzDaz(); }
  _mm_setcsr(callerCsr);
}

}  // namespace

void initEngine() {
  std::call_once(gEngineOnce, [] { gEngine = new dnnl::engine(dnnl::engine::kind::cpu, 0); });
  if (tContext) return;
  int n = omp_get_max_threads();
  if (const char* env = std::getenv("RESNET_NUM_THREADS")) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v > 0 && v <= 4096) n = static_cast<int>(v);
  }
  setTeam(n);
  tContext = new Context(*gEngine);
}

void releaseThreadContext() {
  if (!tContext) return;
  tContext->cache.clear();
  if (tContext->scratch) poolFree(tContext->scratch, tContext->scratchBytes);
  tContext->scratch = nullptr;
  tContext->scratchBytes = 0;
}

dnnl::engine& eng() { return *gEngine; }
dnnl::stream& strm() { return ctx().stream; }
int numThreads() { return omp_get_max_threads(); }

std::string isaName() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41: return "sse41";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx512_mic: return "avx512_mic";
    case dnnl::cpu_isa::avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    default: return "none";
  }
}

FtzScope::FtzScope() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | kFtzDaz); }
FtzScope::~FtzScope() { _mm_setcsr(saved_); }

Napi::Value guarded(const Napi::CallbackInfo& info, const char* op,
                    const std::function<Napi::Value()>& f) {
  Napi::Env env = info.Env();
  if (!tContext)  // a function of this addon called from a thread that never loaded it
    throw Napi::Error::New(env, std::string(op) + ": the native backend is not set up on this thread (require the addon here first)");
  std::string msg;
  try {
    FtzScope ftz;
    return f();
  } catch (const Napi::Error& e) {
    msg = e.Message();
  } catch (const dnnl::error& e) {
    msg = std::string("oneDNN: ") + e.what() + " (" + statusName(e.status) + ")";
  } catch (const std::bad_alloc&) {
    msg = "out of memory";
  } catch (const std::exception& e) {
    msg = e.what();
  } catch (...) {
    msg = "unknown native failure";
  }
  throw Napi::Error::New(env, std::string(op) + ": " + msg);
}

dnnl::primitive_attr defaultAttr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

void execute(const dnnl::primitive& prim, const dnnl::primitive_desc_base& pd,
             std::unordered_map<int, memory> args) {
  const memory::desc sd = pd.scratchpad_desc();
  const size_t need = sd.get_size();
  if (need > 0) {
    Context& c = ctx();
    if (need > c.scratchBytes) {
      if (c.scratch) poolFree(c.scratch, c.scratchBytes);
      c.scratch = nullptr;
      c.scratchBytes = 0;
      c.scratch = poolAlloc(need);
      c.scratchBytes = need;
    }
    args.emplace(DNNL_ARG_SCRATCHPAD, memory(sd, eng(), c.scratch));
  }
  prim.execute(strm(), args);
  strm().wait();
}

Key& Key::md(const memory::desc& d) {
  const dnnl_memory_desc_t& m = d.data;
  i(m.ndims).i(m.data_type).i(m.format_kind).i(m.offset0);
  for (int k = 0; k < m.ndims; ++k) i(m.dims[k]).i(m.padded_dims[k]).i(m.padded_offsets[k]);
  if (m.format_kind == dnnl_blocked) {
    const auto& b = m.format_desc.blocking;
    for (int k = 0; k < m.ndims; ++k) i(b.strides[k]);
    i(b.inner_nblks);
    for (int k = 0; k < b.inner_nblks; ++k) i(b.inner_blks[k]).i(b.inner_idxs[k]);
  } else if (m.format_kind == dnnl_format_kind_wino) {
    // Winograd weights: their tiling depends on the convolution's batch and sizes, so two
    // such layouts of the same dims differ here only (a reorder cached for one wrote the
    // other's weights in the wrong order).
    const auto& w = m.format_desc.wino_desc;
    i(w.wino_format).i(w.r).i(w.alpha).i(w.ic).i(w.oc).i(w.ic_block).i(w.oc_block).i(w.ic2_block).i(w.oc2_block);
    f(w.adj_scale).i(static_cast<int64_t>(w.size));
  }
  i(m.extra.flags);
  return *this;
}

std::shared_ptr<void> cacheFind(const std::string& key) {
  auto& cache = ctx().cache;
  auto it = cache.find(key);
  return it == cache.end() ? nullptr : it->second;
}

void cacheInsert(const std::string& key, std::shared_ptr<void> value) {
  // NOTE: a full cache is simply emptied (entries are shared_ptrs, so a caller holding
  // one keeps it alive); a ResNet needs a few hundred entries.
  auto& cache = ctx().cache;
  if (cache.size() >= kCacheMax) cache.clear();
  cache[key] = std::move(value);
}

size_t cacheSize() { return ctx().cache.size(); }

int64_t intProp(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsNumber()) throw OpError(std::string("'") + name + "' must be a number");
  return v.As<Napi::Number>().Int64Value();
}

std::vector<int64_t> geometryFields(const Napi::Object& o, const std::vector<const char*>& names) {
  std::vector<int64_t> v;
  v.reserve(names.size());
  for (const char* n : names) v.push_back(intProp(o, n));
  return v;
}

std::vector<int64_t> geometryArg(const Napi::CallbackInfo& info, size_t i, const std::vector<const char*>& names) {
  if (i < info.Length() && info[i].IsTypedArray()) {
    Napi::TypedArray ta = info[i].As<Napi::TypedArray>();
    if (ta.TypedArrayType() != napi_float64_array || ta.ElementLength() != names.size())
      throw OpError("a packed geometry must be a Float64Array of " + std::to_string(names.size()) + " numbers");
    const double* d = info[i].As<Napi::Float64Array>().Data();
    std::vector<int64_t> v(names.size());
    for (size_t k = 0; k < names.size(); ++k) {
      if (!(d[k] >= -1e15 && d[k] <= 1e15)) throw OpError(std::string("'") + names[k] + "' must be a number");
      v[k] = static_cast<int64_t>(d[k]);
    }
    return v;
  }
  return geometryFields(objArg(info, i, "geometry"), names);
}

double numArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (i >= info.Length() || !info[i].IsNumber()) throw OpError(std::string("'") + what + "' must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

bool boolArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (i >= info.Length() || !info[i].IsBoolean()) throw OpError(std::string("'") + what + "' must be a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

bool optionalBoolArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  return i < info.Length() && !info[i].IsUndefined() && boolArg(info, i, what);
}

dt precisionArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || info[i].IsNull() || info[i].IsUndefined()) return dt::f32;
  const std::string s = info[i].IsString() ? info[i].As<Napi::String>().Utf8Value() : "";
  if (s == "fp32") return dt::f32;
  if (s == "bf16") return dt::bf16;
  throw OpError("'precision' must be 'fp32' or 'bf16'");
}

Napi::Object objArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (i >= info.Length() || !info[i].IsObject()) throw OpError(std::string("'") + what + "' must be an object");
  return info[i].As<Napi::Object>();
}

Napi::Object describePd(Napi::Env env, const dnnl::primitive_desc_base& pd,
                        const std::vector<std::pair<const char*, memory::desc>>& mds) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("impl", pd.impl_info_str());
  for (const auto& [name, md] : mds) o.Set(name, formatName(md));
  return o;
}

namespace {

// info() -> { onednn, threads, isa, cachedPrimitives, winograd }
Napi::Value Info(const Napi::CallbackInfo& info) {
  return guarded(info, "info", [&]() -> Napi::Value {
    const dnnl_version_t* v = dnnl_version();
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("onednn", std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch));
    o.Set("threads", numThreads());
    o.Set("isa", isaName());
    o.Set("cachedPrimitives", static_cast<double>(cacheSize()));
    o.Set("winograd", winogradEnabled());
    return o;
  });
}

// ftzStatus() -> [{ thread, ftz, daz }] for the calling thread inside a native call and
// every OpenMP thread: a check that denormals cannot slow a kernel down.
Napi::Value FtzStatus(const Napi::CallbackInfo& info) {
  return guarded(info, "ftzStatus", [&]() -> Napi::Value {
    std::vector<unsigned> csr(static_cast<size_t>(numThreads()), 0);
#pragma omp parallel
    {
      const int t = omp_get_thread_num();
      if (t < static_cast<int>(csr.size())) csr[static_cast<size_t>(t)] = _mm_getcsr();
    }
    Napi::Array a = Napi::Array::New(info.Env(), csr.size());
    for (size_t t = 0; t < csr.size(); ++t) {
      Napi::Object o = Napi::Object::New(info.Env());
      o.Set("thread", static_cast<double>(t));
      o.Set("ftz", (csr[t] & 0x8000) != 0);
      o.Set("daz", (csr[t] & 0x0040) != 0);
      a.Set(static_cast<uint32_t>(t), o);
    }
    return a;
  });
}

// setThreads(n) -> n: this JS thread's OpenMP team from now on (as RESNET_NUM_THREADS does when
// the thread loads the addon). Its cached primitives are dropped: some size their work and
// scratchpad for the team they were made with.
Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  return guarded(info, "setThreads", [&]() -> Napi::Value {
    const double n = numArg(info, 0, "n");
    if (!(n >= 1 && n <= 4096) || n != static_cast<double>(static_cast<int>(n)))
      throw OpError("'n' must be an integer from 1 to 4096, got " + std::to_string(n));
    ctx().cache.clear();
    setTeam(static_cast<int>(n));
    return Napi::Number::New(info.Env(), numThreads());
  });
}

// threadIds() -> [the calling thread's id, then its OpenMP team's others] (Linux thread ids,
// as /proc/self/task lists them): the threads that run this thread's kernels.
Napi::Value ThreadIds(const Napi::CallbackInfo& info) {
  return guarded(info, "threadIds", [&]() -> Napi::Value {
    std::vector<double> ids(static_cast<size_t>(numThreads()), 0);
#pragma omp parallel
    {
      const int t = omp_get_thread_num();
      if (t < static_cast<int>(ids.size())) ids[static_cast<size_t>(t)] = static_cast<double>(syscall(SYS_gettid));
    }
    Napi::Array a = Napi::Array::New(info.Env(), ids.size());
    for (size_t i = 0; i < ids.size(); ++i) a.Set(static_cast<uint32_t>(i), ids[i]);
    return a;
  });
}

// idleThreads(ids) -> how many: each of these threads of this process is given SCHED_IDLE
// (Linux: it runs only on a core no other thread wants; any user may lower a thread so). A
// thread that has ended meanwhile is skipped.
Napi::Value IdleThreads(const Napi::CallbackInfo& info) {
  return guarded(info, "idleThreads", [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsArray()) throw OpError("'ids' must be an array of thread ids");
    const Napi::Array ids = info[0].As<Napi::Array>();
    std::vector<pid_t> tids;  // all checked before any is touched
    for (uint32_t i = 0; i < ids.Length(); ++i) {
      const Napi::Value v = ids.Get(i);
      const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
      if (!(d >= 1 && d <= 4194304) || d != static_cast<double>(static_cast<pid_t>(d)))
        throw OpError("'ids[" + std::to_string(i) + "]' must be a thread id (a positive integer)");
      tids.push_back(static_cast<pid_t>(d));
    }
    int done = 0;
    for (const pid_t tid : tids) {
      // Only this process's threads: /proc/self/task/<tid> exists for those (one that ended is skipped).
      if (access(("/proc/self/task/" + std::to_string(tid)).c_str(), F_OK) != 0) {
        if (errno == ENOENT) continue;
        throw OpError("thread " + std::to_string(tid) + ": " + std::strerror(errno));
      }
      sched_param p{};
      p.sched_priority = 0;
      if (sched_setscheduler(tid, SCHED_IDLE, &p) != 0) {
        if (errno == ESRCH) continue;
        throw OpError("SCHED_IDLE for thread " + std::to_string(tid) + ": " + std::strerror(errno));
      }
      ++done;
    }
    return Napi::Number::New(info.Env(), done);
  });
}

}  // namespace

void exportEngine(Napi::Env env, Napi::Object exports) {
  initEngine();
  // This env's thread ends (a worker thread stopping, or the process exiting): its cached
  // primitives and scratchpad go (the context itself stays, see Context).
  env.AddCleanupHook([] { releaseThreadContext(); });
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("ftzStatus", Napi::Function::New(env, FtzStatus, "ftzStatus"));
  exports.Set("threadIds", Napi::Function::New(env, ThreadIds, "threadIds"));
  exports.Set("idleThreads", Napi::Function::New(env, IdleThreads, "idleThreads"));
}

}  // namespace rn
