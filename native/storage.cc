// Storage: a JS object wrapping one dnnl::memory (f32, s32, bf16 standing in for f32 under
// mixed precision, or a primitive's u8/s32
// workspace) in any oneDNN layout, plus a small cache of reordered copies keyed by memory
// desc. Public data is plain row-major: fromArray() makes plain memory, read() reorders to
// plain. Buffers come from the pool in buffers.cc. Invariants: copies are valid only while the primary is unchanged (in-place writers
// call invalidate()); padding of blocked layouts is zero (oneDNN writes it so).
#include "common.h"

#include <oneapi/dnnl/dnnl_debug.h>

#include <algorithm>
#include <cstring>

namespace rn {

// ---- descriptors --------------------------------------------------------------------------
int64_t numelOf(const memory::dims& d) {
  int64_t n = 1;
  for (auto x : d) n *= x;
  return n;
}

memory::dims dimsOf(const memory::desc& md) {
  return memory::dims(md.data.dims, md.data.dims + md.data.ndims);
}

memory::desc plainDesc(const memory::dims& dims, dt type) {
  memory::dims strides(dims.size(), 1);
  for (size_t k = dims.size(); k-- > 1;) strides[k - 1] = strides[k] * std::max<int64_t>(dims[k], 1);
  return memory::desc(dims, type, strides);
}

bool isPlain(const memory::desc& md) { return md == plainDesc(dimsOf(md), md.data_type()); }

namespace {

// The format tag that, applied to md's own dims, gives exactly md (dnnl_format_tag_undef
// when none does).
dnnl_format_tag_t tagOf(const dnnl_memory_desc_t& md) {
  if (md.format_kind != dnnl_blocked) return dnnl_format_tag_undef;
  for (int t = dnnl_a; t < dnnl_format_tag_last; ++t) {
    dnnl_memory_desc_t probe;
    if (dnnl_memory_desc_init_by_tag(&probe, md.ndims, md.dims, md.data_type,
                                     static_cast<dnnl_format_tag_t>(t)) != dnnl_success)
      continue;
    if (dnnl_memory_desc_equal(&probe, &md)) return static_cast<dnnl_format_tag_t>(t);
  }
  return dnnl_format_tag_undef;
}

}  // namespace

std::string formatName(const memory::desc& md) {
  if (md.data.ndims == 0) return "none";
  if (md.data.format_kind == dnnl_format_kind_any) return "any";
  const dnnl_format_tag_t t = tagOf(md.data);
  return t == dnnl_format_tag_undef ? "blocked" : dnnl_fmt_tag2str(t);
}

memory::desc sameLayout(const memory::desc& md, const memory::dims& dims) {
  const dnnl_format_tag_t t = tagOf(md.data);
  if (t == dnnl_format_tag_undef || static_cast<int>(dims.size()) != md.data.ndims)
    return plainDesc(dims, md.data_type());
  return memory::desc(dims, md.data_type(), static_cast<tag>(t));
}

memory::desc descFromFormat(const memory::dims& dims, dt type, const std::string& name) {
  if (name == "plain") return plainDesc(dims, type);
  for (int t = dnnl_a; t < dnnl_format_tag_last; ++t)
    if (name == dnnl_fmt_tag2str(static_cast<dnnl_format_tag_t>(t)))
      return memory::desc(dims, type, static_cast<tag>(t));
  throw OpError("unknown format '" + name + "'");
}

memory::desc withType(const memory::desc& md, dt type) {
  memory::desc out = md;
  out.data.data_type = static_cast<dnnl_data_type_t>(type);
  return out;
}

dt implInfoPrecision(const Napi::Object& p) {
  return p.Has("precision") && p.Get("precision").IsString() &&
                 p.Get("precision").As<Napi::String>().Utf8Value() == "bf16"
             ? dt::bf16 : dt::f32;
}

memory::desc implInfoDesc(const Napi::Object& p) {
  const memory::dims dims = toDims(p.Get("shape"), "shape");
  const std::string fmt = p.Has("format") && p.Get("format").IsString()
                              ? p.Get("format").As<Napi::String>().Utf8Value() : "plain";
  return descFromFormat(dims, implInfoPrecision(p), fmt);
}

memory::dims toDims(const Napi::Value& v, const char* what) {
  if (!v.IsArray()) throw OpError(std::string("'") + what + "' must be an array of sizes");
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() > DNNL_MAX_NDIMS) throw OpError(std::string("'") + what + "' has too many dimensions");
  memory::dims d;
  for (uint32_t k = 0; k < a.Length(); ++k) {
    Napi::Value x = a.Get(k);
    if (!x.IsNumber()) throw OpError(std::string("'") + what + "' must hold numbers");
    const int64_t n = x.As<Napi::Number>().Int64Value();
    if (n < 0) throw OpError(std::string("'") + what + "' has a negative size");
    d.push_back(n);
  }
  if (d.empty()) d.push_back(1);  // a scalar is stored as one element
  return d;
}

void reorderInto(const memory& src, const memory& dst) {
  const memory::desc s = src.get_desc(), d = dst.get_desc();
  if (s == d) {
    // A same-layout copy: oneDNN's reorder takes its generic `simple:any` kernel for blocked
    // layouts (measured 5-7 ms for a 256x56x56 map); a parallel memcpy is bandwidth-bound.
    const size_t bytes = s.get_size(), chunk = size_t{1} << 18;
    char* to = static_cast<char*>(dst.get_data_handle());
    const char* from = static_cast<const char*>(src.get_data_handle());
    const int64_t n = static_cast<int64_t>((bytes + chunk - 1) / chunk);
#pragma omp parallel for schedule(static) if (n > 1)
    for (int64_t i = 0; i < n; i++) {
      const size_t at = static_cast<size_t>(i) * chunk;
      std::memcpy(to + at, from + at, std::min(chunk, bytes - at));
    }
    return;
  }
  auto r = cached<dnnl::reorder>(Key("reorder").md(s).md(d), [&] {
    return dnnl::reorder::primitive_desc(eng(), s, eng(), d, defaultAttr());
  });
  execute(r->prim, r->pd, {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}});
}

// ---- Storage ------------------------------------------------------------------------------
namespace {

constexpr size_t kMaxCopies = 4;  // reordered copies kept per storage

// Marks JS objects made by Storage::Create, so From() can tell a freed storage from a stranger.
const napi_type_tag kStorageTag = {0x7265736e65742d74ULL, 0x732d73746f726167ULL};

void check(napi_env env, napi_status st, const char* what) {
  if (st != napi_ok) throw OpError(std::string("N-API failure: ") + what);
}

bool isOurs(const Napi::Value& v) {
  bool ours = false;
  return v.IsObject() && napi_check_object_type_tag(v.Env(), v, &kStorageTag, &ours) == napi_ok && ours;
}

}  // namespace

Storage::~Storage() { release(); }

void Storage::Finalize(napi_env, void* data, void*) { delete static_cast<Storage*>(data); }

Storage::New Storage::Wrapped(Napi::Env env) {
  Napi::Object obj = Napi::Object::New(env);
  check(env, napi_type_tag_object(env, obj, &kStorageTag), "type tag");
  auto* s = new Storage(env);
  const napi_status st = napi_wrap(env, obj, s, Finalize, nullptr, nullptr);
  if (st != napi_ok) {
    delete s;
    check(env, st, "wrap");
  }
  return {obj, s};
}

Storage::New Storage::Create(Napi::Env env, const memory::desc& md) {
  auto [obj, s] = Wrapped(env);
  const size_t bytes = md.get_size();
  s->setPrimary(md, poolAlloc(bytes), bytes);
  s->freed_ = false;
  accountAlloc(env, static_cast<int64_t>(bytes), 1);
  return {obj, s};
}

Storage* Storage::From(const Napi::Value& v, const char* what) {
  if (!isOurs(v)) throw OpError(std::string("'") + what + "' is not a native storage");
  void* p = nullptr;
  if (napi_unwrap(v.Env(), v, &p) != napi_ok || !p) throw OpError(std::string("'") + what + "' was already freed");
  Storage* s = static_cast<Storage*>(p);
  if (s->freed_) throw OpError(std::string("'") + what + "' was already freed");
  return s;
}

bool Storage::Free(const Napi::Value& v) {
  if (!isOurs(v)) throw OpError("'s' is not a native storage");
  void* p = nullptr;
  if (napi_remove_wrap(v.Env(), v, &p) != napi_ok || !p) return false;
  Storage* s = static_cast<Storage*>(p);
  const bool wasLive = s->release();
  delete s;
  return wasLive;
}

Storage::New Storage::Take(Napi::Env env, Storage* from) {
  auto [obj, s] = Wrapped(env);
  from->invalidate();
  from->unreportCopies();
  s->setPrimary(from->md_, from->ptr_, from->bytes_);
  s->freed_ = false;
  s->meta = std::move(from->meta);
  from->meta.clear();
  from->ptr_ = nullptr;
  from->bytes_ = 0;
  from->mem_ = memory();
  from->freed_ = true;  // the bytes and the live count move with the memory
  return {obj, s};
}

void Storage::setPrimary(const memory::desc& md, void* ptr, size_t bytes) {
  md_ = md;
  ptr_ = ptr;
  bytes_ = bytes;
  mem_ = memory(md, eng(), ptr);
}

Storage::Copy Storage::makeCopy(const memory::desc& want) {
  if (want.data_type() != type() && !(isFloat(want.data_type()) && isFloat(type())))
    throw OpError("storage has another data type than the op needs");
  const memory::dims have = dimsOf(md_), need = dimsOf(want);
  if (numelOf(have) != numelOf(need)) throw OpError("storage has another element count than the op needs");
  const size_t bytes = want.get_size();
  Copy c{want, poolAlloc(bytes), bytes, memory()};
  try {
    c.mem = memory(want, eng(), c.ptr);
    // oneDNN reorders into Winograd weights from plain layouts only: a blocked one (a
    // trained weight) goes through a plain copy.
    const bool wino = want.data.format_kind == dnnl_format_kind_wino;
    if (have == need && (!wino || isPlain(md_))) {
      reorderInto(mem_, c.mem);
    } else if (isPlain(md_)) {  // same elements, other dims: a plain view, then reorder
      reorderInto(memory(plainDesc(need, type()), eng(), ptr_), c.mem);  // (converts f32 <-> bf16 too)
    } else {
      const memory::desc tmpMd = plainDesc(have, type());
      const size_t tmpBytes = tmpMd.get_size();
      void* tmp = poolAlloc(tmpBytes);
      try {
        reorderInto(mem_, memory(tmpMd, eng(), tmp));
        reorderInto(memory(plainDesc(need, type()), eng(), tmp), c.mem);
      } catch (...) {
        poolFree(tmp, tmpBytes);
        throw;
      }
      poolFree(tmp, tmpBytes);
    }
  } catch (...) {
    poolFree(c.ptr, c.bytes);
    throw;
  }
  return c;
}

memory Storage::as(const memory::desc& want) {
  if (md_ == want) return mem_;
  for (const Copy& c : copies_)
    if (c.md == want) return c.mem;
  Copy c = makeCopy(want);
  if (copies_.size() >= kMaxCopies) {
    poolFree(copies_.front().ptr, copies_.front().bytes);
    copies_.erase(copies_.begin());
  }
  copies_.push_back(c);
  reportCopies();
  return c.mem;
}

// Copies are reported to V8 at their high-water mark, not as they come and go: a parameter's
// reordered copies are dropped by every optimiser step (invalidate) and made again by the next
// forward, and reporting that churn (~90 MB a resnet18 step, outside any tidy) made V8 start a
// mark-compact every step. Their buffers stay in the pool meanwhile, so the mark is what the
// process holds for them; it is given back when the storage is freed.
void Storage::reportCopies() {
  size_t have = 0;
  for (const Copy& c : copies_) have += c.bytes;
  if (have <= copiesReported_) return;
  accountAlloc(Env(), static_cast<int64_t>(have - copiesReported_), 0);
  copiesReported_ = have;
}

void Storage::unreportCopies() {
  accountAlloc(Env(), -static_cast<int64_t>(copiesReported_), 0);
  copiesReported_ = 0;
}

void Storage::convertTo(const memory::desc& want) {
  if (md_ == want) return;
  auto hit = std::find_if(copies_.begin(), copies_.end(), [&](const Copy& c) { return c.md == want; });
  Copy c;
  size_t fromMark = 0;  // a copy's bytes, already reported under the copies' mark, move to the primary
  if (hit != copies_.end()) {
    c = *hit;
    copies_.erase(hit);
    fromMark = c.bytes;  // <= copiesReported_: as() reports every copy it makes
    copiesReported_ -= fromMark;
  } else {
    c = makeCopy(want);
  }
  accountAlloc(Env(), static_cast<int64_t>(c.bytes - fromMark) - static_cast<int64_t>(bytes_), 0);
  poolFree(ptr_, bytes_);
  setPrimary(c.md, c.ptr, c.bytes);
  invalidate();
}

void Storage::invalidate() {
  for (const Copy& c : copies_) poolFree(c.ptr, c.bytes);
  copies_.clear();
}

bool Storage::release() {
  if (freed_) return false;
  invalidate();
  unreportCopies();
  accountAlloc(Env(), -static_cast<int64_t>(bytes_), -1);
  poolFree(ptr_, bytes_);
  ptr_ = nullptr;
  bytes_ = 0;
  mem_ = memory();
  meta.clear();
  freed_ = true;
  return true;
}

// ---- exports ------------------------------------------------------------------------------
namespace {

dt dtypeArg(const Napi::Value& v) {
  const std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (s == "float32") return dt::f32;
  if (s == "int32") return dt::s32;
  throw OpError("dtype must be 'float32' or 'int32'");
}

// fromArray(data: Float32Array | Int32Array, shape) -> storage (plain)
Napi::Value FromArray(const Napi::CallbackInfo& info) {
  return guarded(info, "fromArray", [&]() -> Napi::Value {
    if (info.Length() < 2 || !info[0].IsTypedArray()) throw OpError("'data' must be a Float32Array or Int32Array");
    Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
    dt type;
    if (ta.TypedArrayType() == napi_float32_array) type = dt::f32;
    else if (ta.TypedArrayType() == napi_int32_array) type = dt::s32;
    else throw OpError("'data' must be a Float32Array or Int32Array");
    const memory::dims dims = toDims(info[1], "shape");
    if (numelOf(dims) != static_cast<int64_t>(ta.ElementLength()))
      throw OpError("'data' has " + std::to_string(ta.ElementLength()) + " elements, the shape needs " +
                    std::to_string(numelOf(dims)));
    auto out = Storage::Create(info.Env(), plainDesc(dims, type));
    // The data pointer straight from napi (offset included): ta.ArrayBuffer() refuses an array
    // over a SharedArrayBuffer (the server's input slots, src/serve/engine.ts).
    void* src = nullptr;
    if (napi_get_typedarray_info(info.Env(), ta, nullptr, nullptr, &src, nullptr, nullptr) != napi_ok) throw OpError("cannot read 'data'");
    if (ta.ByteLength() > 0) std::memcpy(out.s->data(), src, ta.ByteLength());
    return out.obj;
  });
}

// read(s) -> Float32Array | Int32Array, plain row-major
Napi::Value Read(const Napi::CallbackInfo& info) {
  return guarded(info, "read", [&]() -> Napi::Value {
    Storage* s = Storage::From(info[0], "s");
    const memory::dims dims = dimsOf(s->md());
    const size_t n = static_cast<size_t>(numelOf(dims));
    Napi::TypedArray out;
    void* dst;
    if (s->type() == dt::f32 || s->type() == dt::bf16) {  // bf16 is read as the f32 it stands for
      auto a = Napi::Float32Array::New(info.Env(), n);
      dst = a.Data();
      out = a;
    } else if (s->type() == dt::s32) {
      auto a = Napi::Int32Array::New(info.Env(), n);
      dst = a.Data();
      out = a;
    } else {
      throw OpError("this storage is an op's workspace, not readable data");
    }
    if (n == 0) return out;
    const memory::desc plain = plainDesc(dims, s->type() == dt::bf16 ? dt::f32 : s->type());
    if (s->md() == plain) std::memcpy(dst, s->data(), n * 4);
    else reorderInto(s->mem(), memory(plain, eng(), dst));
    return out;
  });
}

// full(shape, dtype, value) -> storage (plain)
Napi::Value Full(const Napi::CallbackInfo& info) {
  return guarded(info, "full", [&]() -> Napi::Value {
    const memory::dims dims = toDims(info[0], "shape");
    const dt type = dtypeArg(info[1]);
    const double value = numArg(info, 2, "value");
    auto out = Storage::Create(info.Env(), plainDesc(dims, type));
    const int64_t n = numelOf(dims);
    if (type == dt::f32) std::fill_n(static_cast<float*>(out.s->data()), n, static_cast<float>(value));
    else std::fill_n(static_cast<int32_t*>(out.s->data()), n, static_cast<int32_t>(value));
    return out.obj;
  });
}

// free(s) -> true if released now, false if it was already freed
Napi::Value Free(const Napi::CallbackInfo& info) {
  return guarded(info, "free", [&]() -> Napi::Value {
    return Napi::Boolean::New(info.Env(), Storage::Free(info[0]));
  });
}

// reshape(s, to) -> new plain storage with the same elements, dims `to`
Napi::Value Reshape(const Napi::CallbackInfo& info) {
  return guarded(info, "reshape", [&]() -> Napi::Value {
    Storage* s = Storage::From(info[0], "s");
    const memory::dims to = toDims(info[1], "to");
    const memory::dims have = dimsOf(s->md());
    if (numelOf(to) != numelOf(have)) throw OpError("element counts differ");
    auto out = Storage::Create(info.Env(), plainDesc(to, s->type()));
    const memory::desc plain = plainDesc(have, s->type());
    if (s->md() == plain) std::memcpy(out.s->data(), s->data(), plain.get_size());
    else reorderInto(s->mem(), memory(plain, eng(), out.s->data()));
    return out.obj;
  });
}

// describe(s) -> { dims, dtype, format, bytes } for tests and debugging
Napi::Value Describe(const Napi::CallbackInfo& info) {
  return guarded(info, "describe", [&]() -> Napi::Value {
    Storage* s = Storage::From(info[0], "s");
    Napi::Object o = Napi::Object::New(info.Env());
    const memory::dims d = dimsOf(s->md());
    Napi::Array dims = Napi::Array::New(info.Env(), d.size());
    for (size_t k = 0; k < d.size(); ++k) dims.Set(static_cast<uint32_t>(k), static_cast<double>(d[k]));
    o.Set("dims", dims);
    const dt t = s->type();
    o.Set("dtype", t == dt::f32 ? "float32" : t == dt::s32 ? "int32" : t == dt::bf16 ? "bfloat16" : t == dt::u8 ? "uint8" : "other");
    o.Set("format", formatName(s->md()));
    o.Set("bytes", static_cast<double>(s->bytes()));
    return o;
  });
}

}  // namespace

void exportStorage(Napi::Env env, Napi::Object exports) {
  exports.Set("fromArray", Napi::Function::New(env, FromArray, "fromArray"));
  exports.Set("read", Napi::Function::New(env, Read, "read"));
  exports.Set("full", Napi::Function::New(env, Full, "full"));
  exports.Set("free", Napi::Function::New(env, Free, "free"));
  exports.Set("reshape", Napi::Function::New(env, Reshape, "reshape"));
  exports.Set("describe", Napi::Function::New(env, Describe, "describe"));
}

}  // namespace rn
