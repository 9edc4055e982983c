// Batch normalization. Training forward (batch statistics, biased variance) and backward are
// our own kernels (see below for why), optionally fused with ReLU (the forward then saves its
// per-channel scale and shift, from which the backward recomputes y > 0). Inference forward
// is oneDNN's (use_global_stats), with flags named, never numbered (their values change in
// 3.x) and scale and shift as separate [C] memories. Running statistics are the caller's job.
// x: [N, C, H, W], gamma/beta/mean/variance: [C]; outputs keep x's layout and type (f32, or
// bf16 under mixed precision: read and written as bf16, every sum and statistic in f32/f64).
#include "common.h"
#include "batch_norm_kernels.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <type_traits>

namespace rn {

namespace {

using Fwd = dnnl::batch_normalization_forward;
using flags = dnnl::normalization_flags;

std::shared_ptr<Cached<Fwd>> inferPd(const memory::desc& data, float eps, bool fuseRelu) {
  flags f = flags::use_scale | flags::use_shift | flags::use_global_stats;
  if (fuseRelu) f = f | flags::fuse_norm_relu;
  return cached<Fwd>(Key("bn_infer").md(data).f(eps).i(static_cast<int64_t>(f)), [&] {
    return Fwd::primitive_desc(Fwd::desc(dnnl::prop_kind::forward_inference, data, eps, f), defaultAttr(), eng());
  });
}

memory::desc channelsMd(const memory::desc& data) { return plainDesc({data.data.dims[1]}, dt::f32); }

// Training-mode batch norm is ours, not oneDNN's: oneDNN 2.6's AVX2 kernel for blocked layouts
// (bnorm_jit:avx2 on aBcd8b, the layout every conv leaves its output in) sums a channel's
// N*H*W values in one float per lane. On a 128x16x28x28 Fashion-MNIST conv output its variance
// was 3.2e-4 off in relative terms (its plain-layout kernel: 2e-6), and a resnet56 step's
// weight updates came out 2-6% off PyTorch's float64 answer (PyTorch's float32: 0.2-0.4%).
// These kernels never let a float sum span more than 32 values (partials go on in double), take
// the variance about a value of the channel, and run on x's own layout when it is
// channel-blocked, planar or channels-last; any other layout is reordered to planar first.
// Inference (use_global_stats: nothing to sum) stays on oneDNN.

bool channelView(const memory::desc& md, ChannelView& v) {
  const dnnl_memory_desc_t& d = md.data;
  if ((d.data_type != dnnl_f32 && d.data_type != dnnl_bf16) || d.format_kind != dnnl_blocked || d.ndims < 3 || d.offset0 != 0) return false;
  const auto& b = d.format_desc.blocking;
  v.N = d.dims[0];
  v.C = d.dims[1];
  v.S = 1;
  for (int k = 2; k < d.ndims; ++k) v.S *= d.dims[k];
  if (b.inner_nblks == 1 && b.inner_idxs[0] == 1) {
    v.B = b.inner_blks[0];
    v.Cb = d.padded_dims[1] / v.B;
    v.cbStride = b.strides[1];
  } else if (b.inner_nblks == 0 && b.strides[1] == 1 && d.padded_dims[1] == v.C) {
    v.B = v.C;  // channels-last
    v.Cb = 1;
    v.cbStride = 0;
  } else if (b.inner_nblks == 0 && d.padded_dims[1] == v.C) {
    v.B = 1;  // planar
    v.Cb = v.C;
    v.cbStride = b.strides[1];
  } else {
    return false;
  }
  for (int k = 2; k < d.ndims; ++k) if (d.padded_dims[k] != d.dims[k]) return false;
  // spatial positions dense, B apart, innermost last
  int64_t want = v.B;
  for (int k = d.ndims - 1; k >= 2; --k) {
    if (b.strides[k] != want) return false;
    want *= d.dims[k];
  }
  v.nStride = b.strides[0];
  return v.N > 0 && v.S > 0;
}

// The kernels (batch_norm_kernels.inc) walk the planes (n, cb): S x B contiguous values, with
// no float sum over more than 32 of them. binding.gyp compiles for the x86-64 baseline (SSE2)
// so the addon loads on any x86-64; these loops are built three times, for that baseline,
// for AVX2 + FMA (8 floats a register) and for AVX-512 (16: 1.5-2x over AVX2 on these loops),
// and the widest set the CPU has is picked at run time (common.h, KernelSet). The SGD step
// does the same (sgd.cc); every other loop of ours measured the same on the baseline as with
// -march=x86-64-v3 (axpby, sum: memory-bound) or is scalar (the losses' exp).
namespace base {
#include "batch_norm_kernels.inc"
}  // namespace base

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
namespace avx2 {
#define RN_BN_VEC 8
#include "batch_norm_kernels.inc"
#undef RN_BN_VEC
}  // namespace avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")
namespace avx512 {
#define RN_BN_VEC 16
#include "batch_norm_kernels.inc"
#undef RN_BN_VEC
}  // namespace avx512
#pragma GCC pop_options

bool cpuHas(KernelSet s) {
  // gKernelSet below is set by a static initializer: libgcc's CPU model may not be filled yet
  __builtin_cpu_init();
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  static const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  return s == KernelSet::baseline || (s == KernelSet::avx2 && avx2) || (s == KernelSet::avx512 && avx512);
}

KernelSet widest() {
  return cpuHas(KernelSet::avx512) ? KernelSet::avx512 : cpuHas(KernelSet::avx2) ? KernelSet::avx2 : KernelSet::baseline;
}

const char* kernelSetName(KernelSet s) {
  return s == KernelSet::avx512 ? "avx512" : s == KernelSet::avx2 ? "avx2" : "baseline";
}

KernelSet gKernelSet = widest();  // kernelIsa() may switch to a narrower set (tests)

// NOTE: the tables are filled here, in baseline code, from the functions' addresses: calling
// anything in a wider set's namespace, even a function that only returns pointers, may run its
// instructions (an avx512::makeOps() did, with vmovq, and died on a CPU without AVX).
#define RN_BN_OPS(ns, T) BnOps<T>{&ns::forward<T>, &ns::backward<T>}

template <class T>
const BnOps<T>& ops() {
  static const BnOps<T> wide = RN_BN_OPS(avx512, T), mid = RN_BN_OPS(avx2, T), baseline = RN_BN_OPS(base, T);
  return gKernelSet == KernelSet::avx512 ? wide : gKernelSet == KernelSet::avx2 ? mid : baseline;
}
#undef RN_BN_OPS

// kernelIsa(set?: 'avx512' | 'avx2' | 'baseline') -> the set our own kernels use (after the change)
Napi::Value KernelIsa(const Napi::CallbackInfo& info) {
  return guarded(info, "kernelIsa", [&]() -> Napi::Value {
    if (info.Length() > 0 && !info[0].IsUndefined()) {
      const std::string want = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
      std::string valid;
      for (KernelSet s : {KernelSet::avx512, KernelSet::avx2, KernelSet::baseline}) {
        if (cpuHas(s)) valid += std::string(valid.empty() ? "" : ", ") + kernelSetName(s);
      }
      KernelSet s;
      if (want == "avx512") s = KernelSet::avx512;
      else if (want == "avx2") s = KernelSet::avx2;
      else if (want == "baseline") s = KernelSet::baseline;
      else throw OpError("kernel set must be 'avx512', 'avx2' or 'baseline'; valid on this CPU: " + valid);
      if (!cpuHas(s)) throw OpError(std::string("this CPU cannot run the '") + want + "' kernel set; valid: " + valid);
      gKernelSet = s;
    }
    return Napi::String::New(info.Env(), kernelSetName(gKernelSet));
  });
}

/// The layout a training call runs on (x's own when channelView() takes it, else planar), its
/// view, and the padded channel count.
struct TrainLayout {
  memory::desc data;
  ChannelView v;
  int64_t width = 0;
};

TrainLayout trainLayout(const memory::desc& x) {
  TrainLayout t;
  t.data = x;
  if (!channelView(x, t.v)) {
    t.data = plainDesc(dimsOf(x), x.data_type() == dt::bf16 ? dt::bf16 : dt::f32);
    channelView(t.data, t.v);
  }
  t.width = t.v.Cb * t.v.B;
  return t;
}

/// [padded C] copy of a [C] parameter, zero past C.
std::vector<float> paddedChannels(Storage* s, int64_t C, int64_t width, const char* what) {
  const memory::desc cmd = plainDesc({C}, dt::f32);
  if (dimsOf(s->md()) != memory::dims{C}) throw OpError(std::string("'") + what + "' must have one value per channel (" + std::to_string(C) + ")");
  const float* p = static_cast<const float*>(s->as(cmd).get_data_handle());
  std::vector<float> out(width, 0.f);
  std::copy(p, p + C, out.begin());
  return out;
}

// batchNormTrain(x, gamma, beta, eps, fuseRelu) -> { y, mean, variance, saved | null }
// saved (fuseRelu): [scale, shift] over the padded channels, y = max(x * scale + shift, 0).
template <class T>
Napi::Value batchNormTrain(const Napi::CallbackInfo& info, Storage* x, Storage* gamma, Storage* beta, float eps,
                           bool fuseRelu) {
  const auto [data, v, width] = trainLayout(x->md());
  const std::vector<float> g = paddedChannels(gamma, v.C, width, "gamma");
  const std::vector<float> b = paddedChannels(beta, v.C, width, "beta");
  const T* xp = static_cast<const T*>(x->as(data).get_data_handle());
  const double M = static_cast<double>(v.N * v.S);
  // Sums of d = x - K and d^2 about a value K of each channel (its first), so the variance
  // E[d^2] - E[d]^2 does not cancel even for a mean far from zero.
  std::vector<float> K(width, 0.f);
  for (int64_t cb = 0; cb < v.Cb; ++cb) for (int64_t l = 0; l < v.B; ++l) K[cb * v.B + l] = loadF(xp, v.base(0, cb) + l);
  Outputs outs(info.Env());
  auto y = outs.add(data);
  auto meanOut = outs.add(plainDesc({v.C}, dt::f32));
  auto varOut = outs.add(plainDesc({v.C}, dt::f32));
  // y = x * scale + shift; with fuseRelu, `saved` keeps [scale, shift] so the backward can
  // tell y > 0 from x exactly as this forward did.
  std::vector<double> mean(width), var(width);
  std::vector<float> affine(2 * width);
  float* scale = affine.data();
  float* shift = scale + width;
  ops<T>().forward(v, xp, static_cast<T*>(y.s->data()), K.data(), scale, shift, fuseRelu, [&](const Sums& sums) {
    for (int64_t c = 0; c < width; ++c) {
      const double m = sums.a[c] / M;
      mean[c] = K[c] + m;
      var[c] = std::max(0.0, sums.b[c] / M - m * m);
      const double a = g[c] / std::sqrt(var[c] + eps);
      scale[c] = static_cast<float>(a);
      shift[c] = static_cast<float>(b[c] - mean[c] * a);
    }
  });
  Napi::Value saved = info.Env().Null();
  if (fuseRelu) {
    auto keep = outs.add(plainDesc({2 * width}, dt::f32));
    std::copy(affine.begin(), affine.end(), static_cast<float*>(keep.s->data()));
    saved = keep.obj;
  }
  float* mo = static_cast<float*>(meanOut.s->data());
  float* vo = static_cast<float*>(varOut.s->data());
  for (int64_t c = 0; c < v.C; ++c) { mo[c] = static_cast<float>(mean[c]); vo[c] = static_cast<float>(var[c]); }
  outs.commit();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("y", y.obj);
  o.Set("mean", meanOut.obj);
  o.Set("variance", varOut.obj);
  o.Set("saved", saved);
  return o;
}

Napi::Value BatchNormTrain(const Napi::CallbackInfo& info) {
  return guarded(info, "batchNormTrain", [&]() -> Napi::Value {
    Storage* x = Storage::From(info[0], "x");
    Storage* gamma = Storage::From(info[1], "gamma");
    Storage* beta = Storage::From(info[2], "beta");
    const float eps = static_cast<float>(numArg(info, 3, "eps"));
    const bool fuseRelu = boolArg(info, 4, "fuseRelu");
    if (x->md().data.ndims < 3) throw OpError("'x' must be [N, C, spatial...]");
    if (!isFloat(x->type())) throw OpError("'x' must be float32");
    return x->type() == dt::bf16 ? batchNormTrain<bf16_t>(info, x, gamma, beta, eps, fuseRelu)
                                 : batchNormTrain<float>(info, x, gamma, beta, eps, fuseRelu);
  });
}

// batchNormInfer(x, gamma, beta, mean, variance, eps, fuseRelu) -> y
Napi::Value BatchNormInfer(const Napi::CallbackInfo& info) {
  return guarded(info, "batchNormInfer", [&]() -> Napi::Value {
    Storage* x = Storage::From(info[0], "x");
    Storage* gamma = Storage::From(info[1], "gamma");
    Storage* beta = Storage::From(info[2], "beta");
    Storage* mean = Storage::From(info[3], "mean");
    Storage* variance = Storage::From(info[4], "variance");
    const float eps = static_cast<float>(numArg(info, 5, "eps"));
    const bool fuseRelu = boolArg(info, 6, "fuseRelu");
    const memory::desc data = x->md();
    if (data.data.ndims < 2) throw OpError("'x' must have a channel dimension");
    auto e = inferPd(data, eps, fuseRelu);
    const memory::desc cmd = channelsMd(data);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, x->mem()},
                                         {DNNL_ARG_SCALE, gamma->as(cmd)},
                                         {DNNL_ARG_SHIFT, beta->as(cmd)},
                                         {DNNL_ARG_MEAN, mean->as(e->pd.mean_desc())},
                                         {DNNL_ARG_VARIANCE, variance->as(e->pd.variance_desc())}};
    return executeWithOutput(info.Env(), *e, std::move(args), e->pd.dst_desc());
  });
}

// batchNormBackward(dy, x, gamma, mean, variance, saved | null, eps, fuseRelu)
//   -> { dx, dgamma, dbeta }
// With g = dy (zero where the fused ReLU cut it, as `saved` tells), xhat = (x - mean) / sigma,
// M = N * spatial: dbeta = sum g, dgamma = sum g * xhat,
// dx = gamma / sigma * (g - dbeta / M - xhat * dgamma / M).
// dy is read in x's layout and type; dx comes out in them.
template <class T>
Napi::Value batchNormBackward(const Napi::CallbackInfo& info, Storage* dy, Storage* x, Storage* gamma, Storage* mean,
                              Storage* variance, Storage* saved, float eps, bool fuseRelu) {
  const auto [data, v, width] = trainLayout(x->md());
  const float* affine = nullptr;
  if (fuseRelu) {
    if (saved->type() != dt::f32 || saved->bytes() != static_cast<size_t>(2 * width) * sizeof(float)) {
      throw OpError("'saved' is not what batchNormTrain saved for this 'x'");
    }
    affine = static_cast<const float*>(saved->data());
  }
  const std::vector<float> g = paddedChannels(gamma, v.C, width, "gamma");
  const std::vector<float> mu = paddedChannels(mean, v.C, width, "mean");
  const std::vector<float> var = paddedChannels(variance, v.C, width, "variance");
  const T* xp = static_cast<const T*>(x->as(data).get_data_handle());
  const T* gp = static_cast<const T*>(dy->as(data).get_data_handle());
  // where the fused ReLU passed the gradient: y > 0, recomputed as the forward computed y
  const float* sc = affine;
  const float* sh = affine ? affine + width : nullptr;
  const double M = static_cast<double>(v.N * v.S);
  std::vector<float> A(width), Kx(width), C0(width);  // dx = A * g - Kx * (x - mean) + C0
  Outputs outs(info.Env());
  auto dx = outs.add(data);
  auto dgamma = outs.add(plainDesc({v.C}, dt::f32));
  auto dbeta = outs.add(plainDesc({v.C}, dt::f32));
  float* dg = static_cast<float*>(dgamma.s->data());
  float* db = static_cast<float*>(dbeta.s->data());
  const BnGradCoef k{A.data(), Kx.data(), C0.data(), mu.data(), sc, sh};
  ops<T>().backward(v, xp, gp, static_cast<T*>(dx.s->data()), k, fuseRelu, [&](const Sums& sums) {
    const std::vector<double>& sg = sums.a;
    const std::vector<double>& sgx = sums.b;
    for (int64_t c = 0; c < width; ++c) {
      const double inv = 1.0 / std::sqrt(static_cast<double>(var[c]) + eps);
      A[c] = static_cast<float>(g[c] * inv);
      Kx[c] = static_cast<float>(g[c] * inv * inv * inv * sgx[c] / M);
      C0[c] = static_cast<float>(-g[c] * inv * sg[c] / M);
      if (c < v.C) { db[c] = static_cast<float>(sg[c]); dg[c] = static_cast<float>(sgx[c] * inv); }
    }
  });
  outs.commit();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("dx", dx.obj);
  o.Set("dgamma", dgamma.obj);
  o.Set("dbeta", dbeta.obj);
  return o;
}

Napi::Value BatchNormBackward(const Napi::CallbackInfo& info) {
  return guarded(info, "batchNormBackward", [&]() -> Napi::Value {
    Storage* dy = Storage::From(info[0], "dy");
    Storage* x = Storage::From(info[1], "x");
    Storage* gamma = Storage::From(info[2], "gamma");
    Storage* mean = Storage::From(info[3], "mean");
    Storage* variance = Storage::From(info[4], "variance");
    Storage* saved = optionalStorage(info, 5, "saved");
    const float eps = static_cast<float>(numArg(info, 6, "eps"));
    const bool fuseRelu = boolArg(info, 7, "fuseRelu");
    if (fuseRelu && !saved) throw OpError("fuseRelu needs what batchNormTrain saved ('saved')");
    if (x->md().data.ndims < 3) throw OpError("'x' must be [N, C, spatial...]");
    if (!isFloat(x->type()) || !isFloat(dy->type())) throw OpError("'x' and 'dy' must be float32");
    if (dimsOf(dy->md()) != dimsOf(x->md())) throw OpError("'dy' must have the shape of 'x'");
    return x->type() == dt::bf16 ? batchNormBackward<bf16_t>(info, dy, x, gamma, mean, variance, saved, eps, fuseRelu)
                                 : batchNormBackward<float>(info, dy, x, gamma, mean, variance, saved, eps, fuseRelu);
  });
}

}  // namespace

// kinds: batchNormTrain, batchNormInfer, batchNormBackward; params { shape, format, fuseRelu }
Napi::Value batchNormImplInfo(Napi::Env env, const std::string& kind, const Napi::Object& p) {
  if (kind != "batchNormTrain" && kind != "batchNormInfer" && kind != "batchNormBackward") return Napi::Value();
  const memory::desc data = implInfoDesc(p);
  const bool fuseRelu = p.Has("fuseRelu") && p.Get("fuseRelu").ToBoolean().Value();
  if (kind == "batchNormInfer") {
    const auto& pd = inferPd(data, 1e-5f, fuseRelu)->pd;
    return describePd(env, pd, {{"src", pd.src_desc()}, {"dst", pd.dst_desc()}});
  }
  const memory::desc run = trainLayout(data).data;
  Napi::Object o = Napi::Object::New(env);
  o.Set("impl", std::string("rn:bnorm_f64acc") + (run == data ? "" : ":reorder"));
  o.Set("src", formatName(run));
  o.Set(kind == "batchNormTrain" ? "dst" : "diffSrc", formatName(run));
  return o;
}

KernelSet kernelSet() { return gKernelSet; }

void exportBatchNorm(Napi::Env env, Napi::Object exports) {
  exports.Set("batchNormTrain", Napi::Function::New(env, BatchNormTrain, "batchNormTrain"));
  exports.Set("batchNormInfer", Napi::Function::New(env, BatchNormInfer, "batchNormInfer"));
  exports.Set("batchNormBackward", Napi::Function::New(env, BatchNormBackward, "batchNormBackward"));
  exports.Set("kernelIsa", Napi::Function::New(env, KernelIsa, "kernelIsa"));
}

}  // namespace rn
