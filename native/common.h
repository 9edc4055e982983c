// Shared pieces of the oneDNN addon: the engine and stream, the Storage wrapper, the
// primitive cache, descriptor helpers and the guard that turns every C++ failure into a
// JS exception naming the op. Not a place for any primitive's descriptors (those live in
// the family files: conv.cc, batch_norm.cc, ...). Invariants: a JS thread calls in
// synchronously and only touches its own context (engine.cc); state shared between threads
// is thread-safe; every exported function runs inside guarded().
#pragma once

#define NAPI_VERSION 8
#include <napi.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace rn {

using dnnl::memory;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

// ---- batch_norm.cc: the instruction sets our own hot loops are built for ------------
/// binding.gyp builds for the x86-64 baseline; the few loops of ours that gain from wider
/// vectors (training batch norm, the SGD step) are also built under `#pragma GCC target`
/// for AVX2 + FMA and AVX-512, and dispatch on kernelSet() at each call.
enum class KernelSet { baseline, avx2, avx512 };
/// The set our loops use now: the widest the CPU has, unless kernelIsa() chose another.
KernelSet kernelSet();

// ---- engine.cc ----------------------------------------------------------------------
dnnl::engine& eng();
/// The calling JS thread's stream (each thread that loaded the addon has its own context).
dnnl::stream& strm();
/// Creates the engine once and the calling thread's context (stream, cache, OpenMP team).
void initEngine();
/// Drops the calling thread's cached primitives and scratchpad (its env is ending).
void releaseThreadContext();
/// The calling thread's OpenMP team size.
int numThreads();
std::string isaName();

/// Sets FTZ/DAZ on the calling thread for its lifetime and restores the caller's MXCSR
/// afterwards, so JS's own double arithmetic keeps IEEE subnormals.
class FtzScope {
 public:
  FtzScope();
  ~FtzScope();
 private:
  unsigned saved_;
};

/// Runs `f` with FTZ/DAZ set; any C++ exception becomes a JS Error "op: message".
Napi::Value guarded(const Napi::CallbackInfo& info, const char* op,
                    const std::function<Napi::Value()>& f);

/// A failure the caller made (bad handle, wrong dtype ...), reported as "op: message".
struct OpError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Executes `prim` on the calling thread's stream with its user scratchpad and waits.
void execute(const dnnl::primitive& prim, const dnnl::primitive_desc_base& pd,
             std::unordered_map<int, memory> args);

/// Every primitive descriptor is made with these attributes (user-managed scratchpad).
dnnl::primitive_attr defaultAttr();

// ---- primitive cache (engine.cc) ----------------------------------------------------
/// Key of the primitive cache: the op name, then integers and memory descs appended.
class Key {
 public:
  explicit Key(const char* op) : s_(op) { s_.push_back('|'); }
  Key& i(int64_t v) { s_.append(reinterpret_cast<const char*>(&v), sizeof v); return *this; }
  Key& f(float v) { s_.append(reinterpret_cast<const char*>(&v), sizeof v); return *this; }
  Key& dims(const memory::dims& d) { i(static_cast<int64_t>(d.size())); for (auto x : d) i(x); return *this; }
  Key& md(const memory::desc& d);
  const std::string& str() const { return s_; }
 private:
  std::string s_;
};

template <class Prim>
struct Cached {
  typename Prim::primitive_desc pd;
  Prim prim;
};

std::shared_ptr<void> cacheFind(const std::string& key);
void cacheInsert(const std::string& key, std::shared_ptr<void> value);
size_t cacheSize();

/// The cached (pd, primitive) for `key`, made by `make()` (returning Prim::primitive_desc)
/// on first use. The op name at the start of the key keeps types from colliding.
template <class Prim, class Make>
std::shared_ptr<Cached<Prim>> cached(const Key& key, Make make) {
  if (auto hit = cacheFind(key.str())) return std::static_pointer_cast<Cached<Prim>>(hit);
  typename Prim::primitive_desc pd = make();
  auto entry = std::make_shared<Cached<Prim>>(Cached<Prim>{pd, Prim(pd)});
  cacheInsert(key.str(), entry);
  return entry;
}

// ---- descriptors (storage.cc) ---------------------------------------------------------
memory::desc plainDesc(const memory::dims& dims, dt type);
bool isPlain(const memory::desc& md);
int64_t numelOf(const memory::dims& d);
memory::dims dimsOf(const memory::desc& md);
/// The format tag name of `md` ("aBcd16b", "abcd") or "blocked"/"any".
std::string formatName(const memory::desc& md);
/// `md`'s layout tag applied to other dims (same ndims), or a plain desc when unknown.
memory::desc sameLayout(const memory::desc& md, const memory::dims& dims);
memory::dims toDims(const Napi::Value& v, const char* what);
/// A desc with `dims` in the layout named by formatName() ("aBcd16b"; "plain" = row-major).
memory::desc descFromFormat(const memory::dims& dims, dt type, const std::string& name);
/// Params of implInfo(): p.shape and p.format (default "plain") as a desc.
memory::desc implInfoDesc(const Napi::Object& p);

// ---- storage (storage.cc) ---------------------------------------------------------------
/// Aligned buffers from the size-keyed pool (buffers.cc).
void* poolAlloc(size_t bytes);
void poolFree(void* p, size_t bytes);

/// A storage is a plain JS object type-tagged as ours and wrapping this C++ object.
/// free() removes the wrap and deletes it at once (N-API finalizers of Node 20 only run when
/// the event loop turns, so a synchronous training loop would otherwise pile up freed shells);
/// the finalizer is a safety net for storages never freed.
class Storage {
 public:
  ~Storage();

  struct New { Napi::Object obj; Storage* s; };
  /// A new JS storage holding fresh memory with descriptor `md` (contents undefined).
  static New Create(Napi::Env env, const memory::desc& md);
  /// The storage behind a JS value, or an OpError naming `what` if it is not a live one.
  static Storage* From(const Napi::Value& v, const char* what);
  /// Releases the storage behind `v` now; false if it had been freed already.
  static bool Free(const Napi::Value& v);
  /// A new JS storage that takes over `from`'s memory (its contents as they are); `from` ends
  /// as freed (a later use says so). For an op that writes into a consumed input.
  static New Take(Napi::Env env, Storage* from);

  const memory::desc& md() const { return md_; }
  memory mem() const { return mem_; }
  void* data() const { return ptr_; }
  size_t bytes() const { return bytes_; }
  bool freed() const { return freed_; }
  dt type() const { return md_.data_type(); }

  /// This storage's contents in descriptor `want`: the primary memory if it already has
  /// it, else a cached reordered copy (made on first request). Dims may differ from the
  /// primary's if the element count matches (plain reinterpretation, e.g. grouped weights).
  memory as(const memory::desc& want);
  /// Replaces the primary memory by its contents in `want` (cached copy promoted if any).
  void convertTo(const memory::desc& want);
  /// Drops reordered copies (call after writing the primary in place).
  void invalidate();
  /// Releases all memory now; later use is reported as an error. Returns false if freed.
  bool release();

  /// Descriptors an op keeps with its output (e.g. max pool's forward src desc).
  std::vector<memory::desc> meta;

 private:
  struct Copy { memory::desc md; void* ptr; size_t bytes; memory mem; };
  explicit Storage(napi_env env) : env_(env) {}
  /// A new type-tagged JS object wrapping a new, still empty (freed) Storage.
  static New Wrapped(Napi::Env env);
  static void Finalize(napi_env env, void* data, void* hint);
  Napi::Env Env() const { return Napi::Env(env_); }
  void setPrimary(const memory::desc& md, void* ptr, size_t bytes);
  Copy makeCopy(const memory::desc& want);
  void reportCopies();    // V8 learns the copies' bytes at their high-water mark (storage.cc)
  void unreportCopies();

  napi_env env_;
  memory::desc md_;
  memory mem_;
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
  bool freed_ = true;
  std::vector<Copy> copies_;
  size_t copiesReported_ = 0;  // bytes of copies V8 has been told of
};

/// The outputs an op creates: released again if the op fails before returning them.
class Outputs {
 public:
  explicit Outputs(Napi::Env env) : env_(env) {}
  ~Outputs() { if (!done_) for (Storage* s : made_) s->release(); }
  Storage::New add(const memory::desc& md) {
    auto out = Storage::Create(env_, md);
    made_.push_back(out.s);
    return out;
  }
  void commit() { done_ = true; }
 private:
  Napi::Env env_;
  std::vector<Storage*> made_;
  bool done_ = false;
};

/// The storage behind info[i], or nullptr when the argument is null or undefined.
inline Storage* optionalStorage(const Napi::CallbackInfo& info, size_t i, const char* what) {
  return info[i].IsNull() || info[i].IsUndefined() ? nullptr : Storage::From(info[i], what);
}

/// SRC, WEIGHTS and (if `b`) BIAS of a weighted forward (convolution, inner product), each in
/// the layout `pd` chose.
template <class Pd>
std::unordered_map<int, memory> weightedForwardArgs(const Pd& pd, Storage* x, Storage* w, Storage* b) {
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, x->as(pd.src_desc())}, {DNNL_ARG_WEIGHTS, w->as(pd.weights_desc())}};
  if (b) args.emplace(DNNL_ARG_BIAS, b->as(pd.bias_desc()));
  return args;
}

/// Runs `e` with `args` and one new output bound to `outArg` in layout `outDesc`; returns it.
template <class Prim>
Napi::Value executeWithOutput(Napi::Env env, const Cached<Prim>& e, std::unordered_map<int, memory> args,
                              const memory::desc& outDesc, int outArg = DNNL_ARG_DST) {
  Outputs outs(env);
  auto out = outs.add(outDesc);
  args.emplace(outArg, out.s->mem());
  execute(e.prim, e.pd, std::move(args));
  outs.commit();
  return out.obj;
}

/// Runs a backward-weights primitive (convolution, inner product): { dw, db | null }.
template <class Prim>
Napi::Value executeBackwardWeights(Napi::Env env, const Cached<Prim>& e, Storage* x, Storage* dy, bool withBias) {
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, x->as(e.pd.src_desc())},
                                       {DNNL_ARG_DIFF_DST, dy->as(e.pd.diff_dst_desc())}};
  Outputs outs(env);
  auto dw = outs.add(e.pd.diff_weights_desc());
  args.emplace(DNNL_ARG_DIFF_WEIGHTS, dw.s->mem());
  Napi::Value db = env.Null();
  if (withBias) {
    auto b = outs.add(e.pd.diff_bias_desc());
    args.emplace(DNNL_ARG_DIFF_BIAS, b.s->mem());
    db = b.obj;
  }
  execute(e.prim, e.pd, std::move(args));
  outs.commit();
  Napi::Object out = Napi::Object::New(env);
  out.Set("dw", dw.obj);
  out.Set("db", db);
  return out;
}

/// Reorders `src` into `dst` (both memories already allocated).
void reorderInto(const memory& src, const memory& dst);
/// Accounting shared by all storages (buffers.cc): live bytes and count, reported to V8.
void accountAlloc(Napi::Env env, int64_t bytes, int countDelta);

// ---- argument helpers --------------------------------------------------------------
int64_t intProp(const Napi::Object& o, const char* name);
/// Reads a geometry given either as an object with these named fields or, the fast path
/// the TS backend uses, as a Float64Array of the same numbers in the same order.
std::vector<int64_t> geometryArg(const Napi::CallbackInfo& info, size_t i, const std::vector<const char*>& names);
std::vector<int64_t> geometryFields(const Napi::Object& o, const std::vector<const char*>& names);
double numArg(const Napi::CallbackInfo& info, size_t i, const char* what);
bool boolArg(const Napi::CallbackInfo& info, size_t i, const char* what);
/// info[i] as a boolean, false when absent or undefined (an optional trailing flag).
bool optionalBoolArg(const Napi::CallbackInfo& info, size_t i, const char* what);
/// bf16 mixed precision: a storage may hold bf16 where the tensor above it says float32 (the
/// output of a bf16 convolution and the activations after it); as() converts for a reader
/// that needs f32, so only hot ops need to know.
inline bool isFloat(dt t) { return t == dt::f32 || t == dt::bf16; }
/// A desc with md's layout (strides and blocks are in elements) and another data type.
memory::desc withType(const memory::desc& md, dt type);
/// The precision field of implInfo() params ("bf16" -> bf16, else f32).
dt implInfoPrecision(const Napi::Object& p);

/// One bf16 value (the upper half of an IEEE float), for our own kernels' loops.
struct bf16_t { uint16_t bits; };
inline float loadF(const float* p, int64_t i) { return p[i]; }
inline float loadF(const bf16_t* p, int64_t i) {
  const uint32_t u = static_cast<uint32_t>(p[i].bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
inline void storeF(float* p, int64_t i, float v) { p[i] = v; }
/// Round to nearest even, as oneDNN's and PyTorch's conversions; a NaN stays a (quiet) NaN.
inline void storeF(bf16_t* p, int64_t i, float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  const bool nan = (u & 0x7fffffffu) > 0x7f800000u;
  const uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  p[i].bits = static_cast<uint16_t>(nan ? ((u >> 16) | 0x40u) : r);
}

/// The compute type a precision argument names: "bf16" -> bf16; "fp32", null, undefined or
/// a missing argument -> f32.
dt precisionArg(const Napi::CallbackInfo& info, size_t i);
Napi::Object objArg(const Napi::CallbackInfo& info, size_t i, const char* what);

// ---- registration: each family file adds its exports ------------------------------
using Exporter = void (*)(Napi::Env, Napi::Object);
void exportBuffers(Napi::Env env, Napi::Object exports);
void exportStorage(Napi::Env env, Napi::Object exports);
void exportEngine(Napi::Env env, Napi::Object exports);
void exportConv(Napi::Env env, Napi::Object exports);
void exportBatchNorm(Napi::Env env, Napi::Object exports);
void exportPool(Napi::Env env, Napi::Object exports);
void exportEltwise(Napi::Env env, Napi::Object exports);
void exportBinary(Napi::Env env, Napi::Object exports);
void exportInnerProduct(Napi::Env env, Napi::Object exports);
void exportLoss(Napi::Env env, Napi::Object exports);
void exportSgd(Napi::Env env, Napi::Object exports);
void exportReduce(Napi::Env env, Napi::Object exports);
void exportDetect(Napi::Env env, Napi::Object exports);
void exportChain(Napi::Env env, Napi::Object exports);
void exportBench(Napi::Env env, Napi::Object exports);

/// implInfo(kind, params) per family: nullptr result means "not my kind".
Napi::Value convImplInfo(Napi::Env env, const std::string& kind, const Napi::Object& p);
Napi::Value batchNormImplInfo(Napi::Env env, const std::string& kind, const Napi::Object& p);
Napi::Value poolImplInfo(Napi::Env env, const std::string& kind, const Napi::Object& p);
Napi::Value eltwiseImplInfo(Napi::Env env, const std::string& kind, const Napi::Object& p);

/// {impl, <arg>: formatName} for a primitive descriptor.
Napi::Object describePd(Napi::Env env, const dnnl::primitive_desc_base& pd,
                        const std::vector<std::pair<const char*, memory::desc>>& mds);

// ---- conv geometry shared by conv.cc and bench.cc ---------------------------------------
struct ConvGeom {
  int64_t N, C, H, W, K, R, S, OH, OW, strideH, strideW, padH, padW, dilH, dilW, groups;
};
extern const std::vector<const char*> kConvFields;
ConvGeom convGeom(const std::vector<int64_t>& v);
/// Right padding so that oneDNN's output-size rule gives exactly `out`.
int64_t padRight(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t padL, int64_t dil);

struct ConvShapes {
  memory::dims src, wei, bias, dst, strides, dil, padL, padR;
};
ConvShapes convShapes(const ConvGeom& g);
/// `type` is the compute precision: f32, or bf16 (src, weights and dst bf16; bias f32).
dnnl::convolution_forward::primitive_desc convFwdPd(
    const ConvGeom& g, bool bias, const dnnl::primitive_attr& attr,
    dnnl::prop_kind prop = dnnl::prop_kind::forward_training, dt type = dt::f32);
/// The cached max pool without a workspace (forward_inference) for src and a geometry in
/// kPoolFields order: N, C, H, W, OH, OW, kernelH, kernelW, strideH, strideW, padH, padW (pool.cc).
std::shared_ptr<Cached<dnnl::pooling_forward>> maxPoolInference(const memory::desc& src, const std::vector<int64_t>& geometry);
/// The cached inference convolution y = relu?(conv(x, w) + b + residual?) (forward_inference;
/// `sum` adds what dst holds, `relu` clamps last): the op of BN-folded inference.
std::shared_ptr<Cached<dnnl::convolution_forward>> convFused(const ConvGeom& g, bool bias, bool sum, bool relu, dt type);
/// Whether f32 convolutions use Winograd for 3x3 stride-1 layers (inference: all of them,
/// with nChw16c activations; training: those of >= 64 channels in and out): oneDNN has it on
/// this CPU and RESNET_WINOGRAD is not 0.
bool winogradEnabled();
/// bf16: diff_dst, weights and diff_src bf16.
dnnl::convolution_backward_data::primitive_desc convBwdDataPd(
    const ConvGeom& g, const dnnl::convolution_forward::primitive_desc& hint,
    const dnnl::primitive_attr& attr, dt type = dt::f32);
/// The layout oneDNN's convolutions leave an activation of these dims ([N, C, H, W]) in on
/// this CPU (e.g. aBcd8b with AVX2, aBcd16b with AVX-512): the layout to pick for an op
/// that has no input to copy it from.
memory::desc preferredActivationDesc(const memory::dims& nchw);
/// bf16: src and diff_dst bf16; diff_weights and diff_bias stay f32 (they feed the f32 SGD).
dnnl::convolution_backward_weights::primitive_desc convBwdWeightsPd(
    const ConvGeom& g, bool bias, const dnnl::convolution_forward::primitive_desc& hint,
    const dnnl::primitive_attr& attr, dt type = dt::f32);

}  // namespace rn
