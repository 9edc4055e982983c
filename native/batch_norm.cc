// Batch normalization. Training forward (batch statistics, biased variance) and backward are
// our own kernels (see below for why), optionally fused with ReLU (the forward then saves a
// byte mask of y > 0 for the backward); inference forward is oneDNN's (use_global_stats), with
// flags named, never numbered (their values change in 3.x) and scale and shift as separate
// [C] memories. Running statistics are the caller's job. x: [N, C, H, W], gamma/beta/mean/
// variance: [C]; outputs keep x's layout.
#include "common.h"

#include <omp.h>

#include <cmath>

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
// These kernels accumulate in double, take the variance about the mean (two passes), and run on
// x's own layout when it is channel-blocked, planar or channels-last; any other layout is
// reordered to planar first. Inference (use_global_stats: nothing to sum) stays on oneDNN.

// A 4-D (or wider) f32 layout seen as [N][Cb][S][B]: B channels contiguous, S spatial
// positions B apart, Cb channel blocks. Planar NCHW is B = 1; channels-last is Cb = 1, B = C;
// aBcd8b is B = 8. Channels past C (block padding) are carried with gamma = beta = 0.
struct ChannelView {
  int64_t N = 0, C = 0, Cb = 0, B = 0, S = 0, nStride = 0, cbStride = 0;
  int64_t channel(int64_t cb, int64_t lane) const { return cb * B + lane; }
  int64_t base(int64_t n, int64_t cb) const { return n * nStride + cb * cbStride; }
};

bool channelView(const memory::desc& md, ChannelView& v) {
  const dnnl_memory_desc_t& d = md.data;
  if (d.data_type != dnnl_f32 || d.format_kind != dnnl_blocked || d.ndims < 3 || d.offset0 != 0) return false;
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

// Per-channel sums over (n, spatial) of f(value index) for each lane, in double: one partial
// array per thread over [Cb * B], added up in thread order.
template <class F>
std::vector<double> channelSums(const ChannelView& v, F f) {
  const int64_t width = v.Cb * v.B;
  const int nthr = omp_get_max_threads();
  std::vector<double> part(static_cast<size_t>(nthr) * width, 0.0);
#pragma omp parallel num_threads(nthr)
  {
    double* acc = part.data() + static_cast<size_t>(omp_get_thread_num()) * width;
#pragma omp for schedule(static) collapse(2)
    for (int64_t n = 0; n < v.N; ++n) {
      for (int64_t cb = 0; cb < v.Cb; ++cb) {
        const int64_t at = v.base(n, cb);
        double* a = acc + cb * v.B;
        for (int64_t s = 0; s < v.S; ++s) {
          const int64_t i = at + s * v.B;
#pragma omp simd
          for (int64_t l = 0; l < v.B; ++l) a[l] += f(i + l, cb * v.B + l);
        }
      }
    }
  }
  std::vector<double> out(width, 0.0);
  for (int t = 0; t < nthr; ++t) for (int64_t c = 0; c < width; ++c) out[c] += part[static_cast<size_t>(t) * width + c];
  return out;
}

// y[i] = g(i, channel) over every element, in parallel.
template <class G>
void channelMap(const ChannelView& v, G g) {
#pragma omp parallel for schedule(static) collapse(2)
  for (int64_t n = 0; n < v.N; ++n) {
    for (int64_t cb = 0; cb < v.Cb; ++cb) {
      const int64_t at = v.base(n, cb);
      for (int64_t s = 0; s < v.S; ++s) {
        const int64_t i = at + s * v.B;
#pragma omp simd
        for (int64_t l = 0; l < v.B; ++l) g(i + l, cb * v.B + l);
      }
    }
  }
}

/// The layout training runs on: x's own when channelView() takes it, else planar.
memory::desc trainDesc(const memory::desc& x) {
  ChannelView v;
  return channelView(x, v) ? x : plainDesc(dimsOf(x), dt::f32);
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
// saved (fuseRelu): one byte per element of y's buffer, 1 where y > 0.
Napi::Value BatchNormTrain(const Napi::CallbackInfo& info) {
  return guarded(info, "batchNormTrain", [&]() -> Napi::Value {
    Storage* x = Storage::From(info[0], "x");
    Storage* gamma = Storage::From(info[1], "gamma");
    Storage* beta = Storage::From(info[2], "beta");
    const float eps = static_cast<float>(numArg(info, 3, "eps"));
    const bool fuseRelu = boolArg(info, 4, "fuseRelu");
    if (x->md().data.ndims < 3) throw OpError("'x' must be [N, C, spatial...]");
    if (x->type() != dt::f32) throw OpError("'x' must be float32");
    const memory::desc data = trainDesc(x->md());
    ChannelView v;
    channelView(data, v);
    const int64_t width = v.Cb * v.B;
    const std::vector<float> g = paddedChannels(gamma, v.C, width, "gamma");
    const std::vector<float> b = paddedChannels(beta, v.C, width, "beta");
    const float* xp = static_cast<const float*>(x->as(data).get_data_handle());
    const double M = static_cast<double>(v.N * v.S);

    std::vector<double> mean = channelSums(v, [&](int64_t i, int64_t) { return static_cast<double>(xp[i]); });
    for (double& m : mean) m /= M;
    std::vector<double> var = channelSums(v, [&](int64_t i, int64_t c) { const double d = xp[i] - mean[c]; return d * d; });
    for (double& s : var) s /= M;

    std::vector<float> scale(width), shift(width);
    for (int64_t c = 0; c < width; ++c) {
      const double a = g[c] / std::sqrt(var[c] + eps);
      scale[c] = static_cast<float>(a);
      shift[c] = static_cast<float>(b[c] - mean[c] * a);
    }
    Outputs outs(info.Env());
    auto y = outs.add(data);
    auto meanOut = outs.add(plainDesc({v.C}, dt::f32));
    auto varOut = outs.add(plainDesc({v.C}, dt::f32));
    float* yp = static_cast<float*>(y.s->data());
    Napi::Value saved = info.Env().Null();
    if (fuseRelu) {
      auto mask = outs.add(plainDesc({static_cast<int64_t>(data.get_size() / sizeof(float))}, dt::u8));
      uint8_t* mp = static_cast<uint8_t*>(mask.s->data());
      channelMap(v, [&](int64_t i, int64_t c) {
        const float t = xp[i] * scale[c] + shift[c];
        yp[i] = t > 0.f ? t : 0.f;
        mp[i] = t > 0.f;
      });
      saved = mask.obj;
    } else {
      channelMap(v, [&](int64_t i, int64_t c) { yp[i] = xp[i] * scale[c] + shift[c]; });
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
// With g = dy (masked by saved where fused), xhat = (x - mean) / sigma, M = N * spatial:
// dbeta = sum g, dgamma = sum g * xhat, dx = gamma / sigma * (g - dbeta / M - xhat * dgamma / M).
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
    if (fuseRelu && !saved) throw OpError("fuseRelu needs the 'saved' mask of batchNormTrain");
    if (x->md().data.ndims < 3) throw OpError("'x' must be [N, C, spatial...]");
    if (x->type() != dt::f32 || dy->type() != dt::f32) throw OpError("'x' and 'dy' must be float32");
    if (dimsOf(dy->md()) != dimsOf(x->md())) throw OpError("'dy' must have the shape of 'x'");
    const memory::desc data = trainDesc(x->md());
    ChannelView v;
    channelView(data, v);
    const int64_t width = v.Cb * v.B;
    const size_t elems = data.get_size() / sizeof(float);
    const uint8_t* mp = nullptr;
    if (fuseRelu) {
      if (saved->type() != dt::u8 || saved->bytes() != elems) throw OpError("'saved' is not the mask batchNormTrain made for this 'x'");
      mp = static_cast<const uint8_t*>(saved->data());
    }
    const std::vector<float> g = paddedChannels(gamma, v.C, width, "gamma");
    const std::vector<float> mu = paddedChannels(mean, v.C, width, "mean");
    const std::vector<float> var = paddedChannels(variance, v.C, width, "variance");
    const float* xp = static_cast<const float*>(x->as(data).get_data_handle());
    const float* gp = static_cast<const float*>(dy->as(data).get_data_handle());
    auto grad = [&](int64_t i) { return mp ? (mp[i] ? gp[i] : 0.f) : gp[i]; };
    const std::vector<double> sg = channelSums(v, [&](int64_t i, int64_t) { return static_cast<double>(grad(i)); });
    const std::vector<double> sgx = channelSums(v, [&](int64_t i, int64_t c) { return static_cast<double>(grad(i)) * (xp[i] - mu[c]); });

    const double M = static_cast<double>(v.N * v.S);
    std::vector<float> a(width), k(width), c0(width);
    Outputs outs(info.Env());
    auto dx = outs.add(data);
    auto dgamma = outs.add(plainDesc({v.C}, dt::f32));
    auto dbeta = outs.add(plainDesc({v.C}, dt::f32));
    float* dg = static_cast<float*>(dgamma.s->data());
    float* db = static_cast<float*>(dbeta.s->data());
    for (int64_t c = 0; c < width; ++c) {
      const double inv = 1.0 / std::sqrt(static_cast<double>(var[c]) + eps);
      a[c] = static_cast<float>(g[c] * inv);
      k[c] = static_cast<float>(g[c] * inv * inv * inv * sgx[c] / M);
      c0[c] = static_cast<float>(-g[c] * inv * sg[c] / M + g[c] * inv * inv * inv * sgx[c] / M * mu[c]);
      if (c < v.C) { db[c] = static_cast<float>(sg[c]); dg[c] = static_cast<float>(sgx[c] * inv); }
    }
    float* dxp = static_cast<float*>(dx.s->data());
    channelMap(v, [&](int64_t i, int64_t c) { dxp[i] = a[c] * grad(i) - k[c] * xp[i] + c0[c]; });
    outs.commit();
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("dx", dx.obj);
    o.Set("dgamma", dgamma.obj);
    o.Set("dbeta", dbeta.obj);
    return o;
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
  const memory::desc run = trainDesc(data);
  Napi::Object o = Napi::Object::New(env);
  o.Set("impl", std::string("rn:bnorm_f64acc") + (run == data ? "" : ":reorder"));
  o.Set("src", formatName(run));
  o.Set(kind == "batchNormTrain" ? "dst" : "diffSrc", formatName(run));
  return o;
}

void exportBatchNorm(Napi::Env env, Napi::Object exports) {
  exports.Set("batchNormTrain", Napi::Function::New(env, BatchNormTrain, "batchNormTrain"));
  exports.Set("batchNormInfer", Napi::Function::New(env, BatchNormInfer, "batchNormInfer"));
  exports.Set("batchNormBackward", Napi::Function::New(env, BatchNormBackward, "batchNormBackward"));
}

}  // namespace rn
