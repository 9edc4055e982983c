// Convolution forward, backward-data and backward-weights over oneDNN (2-D, groups,
// dilation, optional bias). Every descriptor uses format_tag::any for src, weights and dst
// (a mixed fixed/any set sends oneDNN to its ref/gemm kernels, REFERENCE.md section 5);
// inputs are reordered to the chosen layouts through the storages' copy caches, outputs
// stay in the layout oneDNN chose. Backward primitives take the forward pd as their hint.
// Precision bf16 (mixed precision, Kalamkar et al. 2019): src, weights, dst and the data
// gradients in bf16, bias and the weight gradients in f32; an f32 input (the network's
// image, the f32 master weights) is converted through its storage's copy cache, so a
// weight is converted once per update (SGD invalidates the copy), and once for good in
// inference.
// x: [N, C, H, W], w: [K, C/groups, R, S], b: [K], y: [N, K, OH, OW].
#include "common.h"

#include <mutex>

namespace rn {

const std::vector<const char*> kConvFields = {"N", "C", "H", "W", "K", "R", "S", "OH", "OW", "strideH", "strideW",
                                              "padH", "padW", "dilationH", "dilationW", "groups"};

ConvGeom convGeom(const std::vector<int64_t>& v) {
  ConvGeom g{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15]};
  if (g.groups < 1 || g.C % g.groups != 0 || g.K % g.groups != 0)
    throw OpError("groups must divide C and K");
  if (g.strideH < 1 || g.strideW < 1 || g.dilH < 1 || g.dilW < 1)
    throw OpError("strides and dilations must be >= 1");
  return g;
}

int64_t padRight(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t padL, int64_t dil) {
  const int64_t span = (k - 1) * dil + 1;
  // PyTorch's symmetric padding when oneDNN's rule (integer division) gives `out`,
  // else the exact right padding (which may be negative for a floor-mode output).
  const int64_t num = in + 2 * padL - span;
  if (num >= 0 && num / stride + 1 == out) return padL;
  return (out - 1) * stride + span - in - padL;
}

ConvShapes convShapes(const ConvGeom& g) {
  ConvShapes s;
  s.src = {g.N, g.C, g.H, g.W};
  s.wei = g.groups > 1 ? memory::dims{g.groups, g.K / g.groups, g.C / g.groups, g.R, g.S}
                       : memory::dims{g.K, g.C, g.R, g.S};
  s.bias = {g.K};
  s.dst = {g.N, g.K, g.OH, g.OW};
  s.strides = {g.strideH, g.strideW};
  s.dil = {g.dilH - 1, g.dilW - 1};
  s.padL = {g.padH, g.padW};
  s.padR = {padRight(g.H, g.OH, g.R, g.strideH, g.padH, g.dilH),
            padRight(g.W, g.OW, g.S, g.strideW, g.padW, g.dilW)};
  return s;
}

namespace {

memory::desc anyMd(const memory::dims& d, dt type = dt::f32) { return memory::desc(d, type, tag::any); }

Key geomKey(const char* op, const ConvGeom& g, dt type) {
  Key k(op);
  k.i(static_cast<int64_t>(type));
  for (int64_t v : {g.N, g.C, g.H, g.W, g.K, g.R, g.S, g.OH, g.OW, g.strideH, g.strideW, g.padH,
                    g.padW, g.dilH, g.dilW, g.groups})
    k.i(v);
  return k;
}

}  // namespace

// Winograd (oneDNN 2.6: F(4x4, 3x3) and, for small batches, F(2x2, 3x3); f32 on AVX-512
// only) runs a 3x3 stride-1 convolution in about half the time of the direct kernels on
// AVX-512 (resnet50's 3x3 layers at batch 16: 4.3-5.4 against 8.9-9.8 ms, Zen 5), with
// errors of ~1e-5 of the output's scale. Its activations are nChw16c while the direct
// inference kernels pick nhwc, so every inference convolution then takes nChw16c (the
// direct 1x1 kernels are as fast in it): no reorders between neighbours. Training passes
// (forward, backward-data, backward-weights) take it for layers of >= 64 channels in and
// out, where all three were faster (resnet18's 3x3 layers at batch 16: 1.4-2x; a detector's
// 256-channel FPN layers: 2.5x); below that (resnet20's 16 and 32 channels at batch 128) it
// was as fast or slower. Its rounding error is ~10x the direct kernels' (conv outputs and
// gradients ~3e-6 relative against 3e-7: test/agreement.test.ts judges it at 1e-4). f32
// only; off with RESNET_WINOGRAD=0.
bool winogradEnabled() {
  static const bool enabled = [] {
    if (const char* env = std::getenv("RESNET_WINOGRAD"); env && std::string(env) == "0") return false;
    try {
      const memory::dims x{1, 16, 8, 8}, w{16, 16, 3, 3}, one{1, 1};
      dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_winograd,
                                        anyMd(x), anyMd(w), anyMd(x), one, {0, 0}, one, one);
      dnnl::convolution_forward::primitive_desc(d, eng());
      return true;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return enabled;
}

namespace {

// 3x3, stride 1, outputs of at least 7x7: on smaller ones (a 64x64 input's last stage) its
// 4x4 tiles are mostly padding, and it was 1-5x slower than direct in every pass.
bool winogradShape(const ConvGeom& g) {
  return g.R == 3 && g.S == 3 && g.strideH == 1 && g.strideW == 1 && g.dilH == 1 && g.dilW == 1 && g.groups == 1 &&
         g.OH >= 7 && g.OW >= 7;
}

bool winogradTraining(const ConvGeom& g, dt type) {
  return type == dt::f32 && g.C >= 64 && g.K >= 64 && winogradShape(g) && winogradEnabled();
}

// make(alg): with Winograd when `wino` and oneDNN takes this case, else the direct kernels.
template <typename Make>
auto winogradOrDirect(bool wino, const Make& make) -> decltype(make(dnnl::algorithm::convolution_direct)) {
  if (wino) {
    try {
      return make(dnnl::algorithm::convolution_winograd);
    } catch (const dnnl::error&) {  // a shape or post-op it does not take
    }
  }
  return make(dnnl::algorithm::convolution_direct);
}

bool isRef(const dnnl::convolution_forward::primitive_desc& pd) {
  return std::string(pd.impl_info_str()).rfind("ref", 0) == 0;
}

}  // namespace

dnnl::convolution_forward::primitive_desc convFwdPd(const ConvGeom& g, bool bias,
                                                    const dnnl::primitive_attr& attr, dnnl::prop_kind prop, dt type) {
  const ConvShapes s = convShapes(g);
  const auto make = [&](dnnl::algorithm alg, const memory::desc& src, const memory::desc& dst) {
    dnnl::convolution_forward::desc d(prop, alg, src, anyMd(s.wei, type), bias ? anyMd(s.bias) : memory::desc(), dst,
                                      s.strides, s.dil, s.padL, s.padR);
    return dnnl::convolution_forward::primitive_desc(d, attr, eng());
  };
  if (prop == dnnl::prop_kind::forward_inference && type == dt::f32 && winogradEnabled()) {
    const auto act = [&](const memory::dims& d) {
      return d[1] % 16 == 0 ? memory::desc(d, dt::f32, tag::nChw16c) : anyMd(d);
    };
    try {  // nChw16c, and on a ref kernel (a case no jit kernel takes in it) oneDNN's own choice
      auto pd = winogradOrDirect(winogradShape(g), [&](dnnl::algorithm alg) { return make(alg, act(s.src), act(s.dst)); });
      if (!isRef(pd)) return pd;
    } catch (const dnnl::error&) {
    }
  }
  return winogradOrDirect(prop == dnnl::prop_kind::forward_training && winogradTraining(g, type),
                          [&](dnnl::algorithm alg) { return make(alg, anyMd(s.src, type), anyMd(s.dst, type)); });
}

dnnl::convolution_backward_data::primitive_desc convBwdDataPd(
    const ConvGeom& g, const dnnl::convolution_forward::primitive_desc& hint,
    const dnnl::primitive_attr& attr, dt type) {
  const ConvShapes s = convShapes(g);
  const auto make = [&](dnnl::algorithm alg) {
    dnnl::convolution_backward_data::desc d(alg, anyMd(s.src, type), anyMd(s.wei, type), anyMd(s.dst, type), s.strides,
                                            s.dil, s.padL, s.padR);
    return dnnl::convolution_backward_data::primitive_desc(d, attr, eng(), hint);
  };
  return winogradOrDirect(winogradTraining(g, type), make);
}

dnnl::convolution_backward_weights::primitive_desc convBwdWeightsPd(
    const ConvGeom& g, bool bias, const dnnl::convolution_forward::primitive_desc& hint,
    const dnnl::primitive_attr& attr, dt type) {
  const ConvShapes s = convShapes(g);
  const auto make = [&](dnnl::algorithm alg) {
    dnnl::convolution_backward_weights::desc d(alg, anyMd(s.src, type), anyMd(s.wei),
                                               bias ? anyMd(s.bias) : memory::desc(), anyMd(s.dst, type), s.strides,
                                               s.dil, s.padL, s.padR);
    return dnnl::convolution_backward_weights::primitive_desc(d, attr, eng(), hint);
  };
  return winogradOrDirect(winogradTraining(g, type), make);
}

memory::desc preferredActivationDesc(const memory::dims& nchw) {
  static auto* known = new std::unordered_map<std::string, memory::desc>();
  static std::mutex mutex;  // JS threads share `known`
  const std::string key = Key("preferred").dims(nchw).str();
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = known->find(key);
    if (it != known->end()) return it->second;
  }
  const int64_t C = nchw[1];
  const memory::dims w{C, C, 1, 1}, st{1, 1}, pad{0, 0};
  dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                    anyMd(nchw), anyMd(w), memory::desc(), anyMd(nchw), st, pad, pad);
  const memory::desc md = dnnl::convolution_forward::primitive_desc(d, eng()).dst_desc();
  std::lock_guard<std::mutex> lock(mutex);
  known->emplace(key, md);
  return md;
}

// Inference: forward_inference with post-ops. `sum` adds the residual already copied into
// dst (append_sum), then `relu` clamps: y = relu(conv(x, w) + b + residual), one pass over y.
std::shared_ptr<Cached<dnnl::convolution_forward>> convFused(const ConvGeom& g, bool bias, bool sum, bool relu, dt type) {
  return cached<dnnl::convolution_forward>(geomKey("conv_fwd_fused", g, type).i(bias).i(sum).i(relu), [&] {
    dnnl::post_ops po;
    if (sum) po.append_sum(1.f);
    if (relu) po.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    dnnl::primitive_attr attr = defaultAttr();
    attr.set_post_ops(po);
    return convFwdPd(g, bias, attr, dnnl::prop_kind::forward_inference, type);
  });
}

namespace {

using Fwd = dnnl::convolution_forward;
using BwdData = dnnl::convolution_backward_data;
using BwdWeights = dnnl::convolution_backward_weights;

std::shared_ptr<Cached<Fwd>> fwd(const ConvGeom& g, bool bias, dt type) {
  return cached<Fwd>(geomKey("conv_fwd", g, type).i(bias), [&] {
    return convFwdPd(g, bias, defaultAttr(), dnnl::prop_kind::forward_training, type);
  });
}

std::shared_ptr<Cached<BwdData>> bwdData(const ConvGeom& g, dt type) {
  return cached<BwdData>(geomKey("conv_bwd_data", g, type), [&] {
    return convBwdDataPd(g, fwd(g, false, type)->pd, defaultAttr(), type);
  });
}

std::shared_ptr<Cached<BwdWeights>> bwdWeights(const ConvGeom& g, bool bias, dt type) {
  return cached<BwdWeights>(geomKey("conv_bwd_weights", g, type).i(bias), [&] {
    return convBwdWeightsPd(g, bias, fwd(g, bias, type)->pd, defaultAttr(), type);
  });
}

// conv2d(x, w, b | null, geometry, precision?) -> y
Napi::Value Conv2d(const Napi::CallbackInfo& info) {
  return guarded(info, "conv2d", [&]() -> Napi::Value {
    Storage* x = Storage::From(info[0], "x");
    Storage* w = Storage::From(info[1], "w");
    Storage* b = optionalStorage(info, 2, "b");
    const ConvGeom g = convGeom(geometryArg(info, 3, kConvFields));
    auto e = fwd(g, b != nullptr, precisionArg(info, 4));
    return executeWithOutput(info.Env(), *e, weightedForwardArgs(e->pd, x, w, b), e->pd.dst_desc());
  });
}

// conv2dFused(x, w, b | null, geometry, residual | null, relu, precision?, consumeResidual?) -> y,
// inference only. With consumeResidual the output is written into the residual's own memory
// when its layout is the output's (as a hand-written network sums into the shortcut's
// buffer: no copy), and the residual storage ends as freed; otherwise it is copied first.
Napi::Value Conv2dFused(const Napi::CallbackInfo& info) {
  return guarded(info, "conv2dFused", [&]() -> Napi::Value {
    Storage* x = Storage::From(info[0], "x");
    Storage* w = Storage::From(info[1], "w");
    Storage* b = optionalStorage(info, 2, "b");
    const ConvGeom g = convGeom(geometryArg(info, 3, kConvFields));
    Storage* r = optionalStorage(info, 4, "residual");
    const bool relu = boolArg(info, 5, "relu");
    if (r && numelOf(dimsOf(r->md())) != g.N * g.K * g.OH * g.OW)
      throw OpError("residual must have the output's shape [N, K, OH, OW]");
    auto e = convFused(g, b != nullptr, r != nullptr, relu, precisionArg(info, 6));
    const bool consume = optionalBoolArg(info, 7, "consumeResidual");
    auto args = weightedForwardArgs(e->pd, x, w, b);
    Outputs outs(info.Env());
    const bool inPlace = r && consume && r != x && r != w && r != b && r->md() == e->pd.dst_desc();
    auto y = inPlace ? Storage::Take(info.Env(), r) : outs.add(e->pd.dst_desc());
    if (r && !inPlace) reorderInto(r->as(sameLayout(r->md(), convShapes(g).dst)), y.s->mem());
    args.emplace(DNNL_ARG_DST, y.s->mem());
    execute(e->prim, e->pd, std::move(args));
    outs.commit();
    return y.obj;
  });
}

// conv2dBackwardData(dy, w, geometry, precision?) -> dx
Napi::Value Conv2dBackwardData(const Napi::CallbackInfo& info) {
  return guarded(info, "conv2dBackwardData", [&]() -> Napi::Value {
    Storage* dy = Storage::From(info[0], "dy");
    Storage* w = Storage::From(info[1], "w");
    const ConvGeom g = convGeom(geometryArg(info, 2, kConvFields));
    auto e = bwdData(g, precisionArg(info, 3));
    return executeWithOutput(info.Env(), *e, {{DNNL_ARG_DIFF_DST, dy->as(e->pd.diff_dst_desc())}, {DNNL_ARG_WEIGHTS, w->as(e->pd.weights_desc())}},
                             e->pd.diff_src_desc(), DNNL_ARG_DIFF_SRC);
  });
}

// conv2dBackwardWeights(x, dy, geometry, withBias, precision?) -> { dw, db | null } (f32)
Napi::Value Conv2dBackwardWeights(const Napi::CallbackInfo& info) {
  return guarded(info, "conv2dBackwardWeights", [&]() -> Napi::Value {
    Storage* x = Storage::From(info[0], "x");
    Storage* dy = Storage::From(info[1], "dy");
    const ConvGeom g = convGeom(geometryArg(info, 2, kConvFields));
    const bool withBias = boolArg(info, 3, "withBias");
    return executeBackwardWeights(info.Env(), *bwdWeights(g, withBias, precisionArg(info, 4)), x, dy, withBias);
  });
}

}  // namespace

Napi::Value convImplInfo(Napi::Env env, const std::string& kind, const Napi::Object& p) {
  if (kind != "conv2d" && kind != "conv2dFused" && kind != "conv2dBackwardData" && kind != "conv2dBackwardWeights")
    return Napi::Value();
  const ConvGeom g = convGeom(geometryFields(p, kConvFields));
  const bool bias = p.Has("withBias") && p.Get("withBias").ToBoolean().Value();
  const dt type = implInfoPrecision(p);
  if (kind == "conv2d" || kind == "conv2dFused") {
    const bool sum = p.Has("residual") && p.Get("residual").ToBoolean().Value();
    const bool relu = p.Has("relu") && p.Get("relu").ToBoolean().Value();
    const auto& pd = kind == "conv2d" ? fwd(g, bias, type)->pd : convFused(g, bias, sum, relu, type)->pd;
    return describePd(env, pd, {{"src", pd.src_desc()}, {"weights", pd.weights_desc()}, {"dst", pd.dst_desc()}});
  }
  if (kind == "conv2dBackwardData") {
    const auto& pd = bwdData(g, type)->pd;
    return describePd(env, pd, {{"diffDst", pd.diff_dst_desc()}, {"weights", pd.weights_desc()},
                                {"diffSrc", pd.diff_src_desc()}});
  }
  const auto& pd = bwdWeights(g, bias, type)->pd;
  return describePd(env, pd, {{"src", pd.src_desc()}, {"diffDst", pd.diff_dst_desc()},
                              {"diffWeights", pd.diff_weights_desc()}});
}

void exportConv(Napi::Env env, Napi::Object exports) {
  exports.Set("conv2d", Napi::Function::New(env, Conv2d, "conv2d"));
  exports.Set("conv2dFused", Napi::Function::New(env, Conv2dFused, "conv2dFused"));
  exports.Set("conv2dBackwardData", Napi::Function::New(env, Conv2dBackwardData, "conv2dBackwardData"));
  exports.Set("conv2dBackwardWeights", Napi::Function::New(env, Conv2dBackwardWeights, "conv2dBackwardWeights"));
}

}  // namespace rn
