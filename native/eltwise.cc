// Elementwise unary ops over oneDNN eltwise primitives, in x's own layout: relu (forward as
// relu_use_dst_for_bwd, so the backward needs only y), its backward, and y = alpha * x + beta
// (eltwise_linear), in x's own type (f32, or bf16 under mixed precision). oneDNN keeps the channel padding of blocked layouts zero, which a raw
// loop with beta != 0 would not. int32 affine (labels, counters) is a plain loop.
#include "common.h"

namespace rn {

namespace {

using Fwd = dnnl::eltwise_forward;
using Bwd = dnnl::eltwise_backward;
constexpr auto kRelu = dnnl::algorithm::eltwise_relu_use_dst_for_bwd;

std::shared_ptr<Cached<Fwd>> fwd(dnnl::algorithm alg, const memory::desc& data, float alpha, float beta,
                                 bool training) {
  return cached<Fwd>(Key("eltwise_fwd").i(static_cast<int64_t>(alg)).md(data).f(alpha).f(beta).i(training), [&] {
    const auto prop = training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
    return Fwd::primitive_desc(Fwd::desc(prop, alg, data, alpha, beta), defaultAttr(), eng());
  });
}

std::shared_ptr<Cached<Bwd>> reluBwd(const memory::desc& data) {
  return cached<Bwd>(Key("relu_bwd").md(data), [&] {
    return Bwd::primitive_desc(Bwd::desc(kRelu, data, data, 0.f, 0.f), defaultAttr(), eng(),
                               fwd(kRelu, data, 0.f, 0.f, true)->pd);
  });
}

Napi::Value runFwd(const Napi::CallbackInfo& info, Storage* x, dnnl::algorithm alg, float alpha, float beta,
                   bool training) {
  auto e = fwd(alg, x->md(), alpha, beta, training);
  return executeWithOutput(info.Env(), *e, {{DNNL_ARG_SRC, x->mem()}}, e->pd.dst_desc());
}

// relu(x) -> y
Napi::Value Relu(const Napi::CallbackInfo& info) {
  return guarded(info, "relu", [&]() -> Napi::Value {
    Storage* x = Storage::From(info[0], "x");
    if (!isFloat(x->type())) throw OpError("'x' must be float32");
    return runFwd(info, x, kRelu, 0.f, 0.f, true);
  });
}

// reluBackward(dy, y) -> dx = dy where y > 0, else 0
Napi::Value ReluBackward(const Napi::CallbackInfo& info) {
  return guarded(info, "reluBackward", [&]() -> Napi::Value {
    Storage* dy = Storage::From(info[0], "dy");
    Storage* y = Storage::From(info[1], "y");
    auto e = reluBwd(y->md());
    return executeWithOutput(info.Env(), *e, {{DNNL_ARG_DST, y->mem()}, {DNNL_ARG_DIFF_DST, dy->as(e->pd.diff_dst_desc())}},
                             e->pd.diff_src_desc(), DNNL_ARG_DIFF_SRC);
  });
}

// affineScalar(x, alpha, beta) -> alpha * x + beta
Napi::Value AffineScalar(const Napi::CallbackInfo& info) {
  return guarded(info, "affineScalar", [&]() -> Napi::Value {
    Storage* x = Storage::From(info[0], "x");
    const double alpha = numArg(info, 1, "alpha"), beta = numArg(info, 2, "beta");
    if (isFloat(x->type()))  // bf16 stays bf16 (mixed precision)
      return runFwd(info, x, dnnl::algorithm::eltwise_linear, static_cast<float>(alpha), static_cast<float>(beta),
                    false);
    if (x->type() != dt::s32) throw OpError("'x' must be float32 or int32");
    const memory::desc plain = plainDesc(dimsOf(x->md()), dt::s32);
    const int32_t* src = static_cast<const int32_t*>(x->as(plain).get_data_handle());
    Outputs outs(info.Env());
    auto y = outs.add(plain);
    int32_t* dst = static_cast<int32_t*>(y.s->data());
    const int64_t n = numelOf(dimsOf(plain));
    for (int64_t k = 0; k < n; ++k) dst[k] = static_cast<int32_t>(alpha * src[k] + beta);
    outs.commit();
    return y.obj;
  });
}

}  // namespace

// kinds: relu, reluBackward, affineScalar; params { shape, format }
Napi::Value eltwiseImplInfo(Napi::Env env, const std::string& kind, const Napi::Object& p) {
  if (kind != "relu" && kind != "reluBackward" && kind != "affineScalar") return Napi::Value();
  const memory::desc data = implInfoDesc(p);
  if (kind == "reluBackward") {
    const auto& pd = reluBwd(data)->pd;
    return describePd(env, pd, {{"diffDst", pd.diff_dst_desc()}, {"diffSrc", pd.diff_src_desc()}});
  }
  const auto& pd = kind == "relu" ? fwd(kRelu, data, 0.f, 0.f, true)->pd
                                  : fwd(dnnl::algorithm::eltwise_linear, data, 1.f, 0.f, false)->pd;
  return describePd(env, pd, {{"src", pd.src_desc()}, {"dst", pd.dst_desc()}});
}

void exportEltwise(Napi::Env env, Napi::Object exports) {
  exports.Set("relu", Napi::Function::New(env, Relu, "relu"));
  exports.Set("reluBackward", Napi::Function::New(env, ReluBackward, "reluBackward"));
  exports.Set("affineScalar", Napi::Function::New(env, AffineScalar, "affineScalar"));
}

}  // namespace rn
