// Batch normalization over oneDNN: training forward (batch statistics, biased variance),
// inference forward (use_global_stats) and backward, each optionally fused with ReLU
// (fuse_norm_relu; in training its workspace is the `saved` storage). Flags are named, never
// numbered (their values change in 3.x); scale and shift are separate [C] memories
// (use_scale / use_shift). Running statistics are the caller's job. The data layout is x's
// own; dy is reordered to it. x: [N, C, H, W], gamma/beta/mean/variance: [C].
#include "common.h"

namespace rn {

namespace {

using Fwd = dnnl::batch_normalization_forward;
using Bwd = dnnl::batch_normalization_backward;
using flags = dnnl::normalization_flags;

flags trainFlags(bool fuseRelu) {
  flags f = flags::use_scale | flags::use_shift;
  return fuseRelu ? f | flags::fuse_norm_relu : f;
}

flags inferFlags(bool fuseRelu) { return trainFlags(fuseRelu) | flags::use_global_stats; }

std::shared_ptr<Cached<Fwd>> fwd(const memory::desc& data, float eps, bool fuseRelu, bool training) {
  const flags f = training ? trainFlags(fuseRelu) : inferFlags(fuseRelu);
  const auto prop = training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
  return cached<Fwd>(Key("bn_fwd").md(data).f(eps).i(static_cast<int64_t>(f)).i(training), [&] {
    return Fwd::primitive_desc(Fwd::desc(prop, data, eps, f), defaultAttr(), eng());
  });
}

std::shared_ptr<Cached<Bwd>> bwd(const memory::desc& data, float eps, bool fuseRelu) {
  const flags f = trainFlags(fuseRelu);
  return cached<Bwd>(Key("bn_bwd").md(data).f(eps).i(static_cast<int64_t>(f)), [&] {
    return Bwd::primitive_desc(Bwd::desc(dnnl::prop_kind::backward, data, data, eps, f), defaultAttr(), eng(),
                               fwd(data, eps, fuseRelu, true)->pd);
  });
}

memory::desc channelsMd(const memory::desc& data) { return plainDesc({data.data.dims[1]}, dt::f32); }

// batchNormTrain(x, gamma, beta, eps, fuseRelu) -> { y, mean, variance, saved | null }
Napi::Value BatchNormTrain(const Napi::CallbackInfo& info) {
  return guarded(info, "batchNormTrain", [&]() -> Napi::Value {
    Storage* x = Storage::From(info[0], "x");
    Storage* gamma = Storage::From(info[1], "gamma");
    Storage* beta = Storage::From(info[2], "beta");
    const float eps = static_cast<float>(numArg(info, 3, "eps"));
    const bool fuseRelu = boolArg(info, 4, "fuseRelu");
    const memory::desc data = x->md();
    if (data.data.ndims < 2) throw OpError("'x' must have a channel dimension");
    auto e = fwd(data, eps, fuseRelu, true);
    const memory::desc cmd = channelsMd(data);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, x->mem()},
                                         {DNNL_ARG_SCALE, gamma->as(cmd)},
                                         {DNNL_ARG_SHIFT, beta->as(cmd)}};
    Outputs outs(info.Env());
    auto y = outs.add(e->pd.dst_desc());
    auto mean = outs.add(e->pd.mean_desc());
    auto variance = outs.add(e->pd.variance_desc());
    args.emplace(DNNL_ARG_DST, y.s->mem());
    args.emplace(DNNL_ARG_MEAN, mean.s->mem());
    args.emplace(DNNL_ARG_VARIANCE, variance.s->mem());
    Napi::Value saved = info.Env().Null();
    if (fuseRelu) {
      auto ws = outs.add(e->pd.workspace_desc());
      args.emplace(DNNL_ARG_WORKSPACE, ws.s->mem());
      saved = ws.obj;
    }
    execute(e->prim, e->pd, std::move(args));
    outs.commit();
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("y", y.obj);
    o.Set("mean", mean.obj);
    o.Set("variance", variance.obj);
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
    auto e = fwd(data, eps, fuseRelu, false);
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
Napi::Value BatchNormBackward(const Napi::CallbackInfo& info) {
  return guarded(info, "batchNormBackward", [&]() -> Napi::Value {
    Storage* dy = Storage::From(info[0], "dy");
    Storage* x = Storage::From(info[1], "x");
    Storage* gamma = Storage::From(info[2], "gamma");
    Storage* mean = Storage::From(info[3], "mean");
    Storage* variance = Storage::From(info[4], "variance");
    const bool hasSaved = !(info[5].IsNull() || info[5].IsUndefined());
    Storage* saved = hasSaved ? Storage::From(info[5], "saved") : nullptr;
    const float eps = static_cast<float>(numArg(info, 6, "eps"));
    const bool fuseRelu = boolArg(info, 7, "fuseRelu");
    if (fuseRelu && !saved) throw OpError("fuseRelu needs the 'saved' workspace of batchNormTrain");
    const memory::desc data = x->md();
    if (data.data.ndims < 2) throw OpError("'x' must have a channel dimension");
    auto e = bwd(data, eps, fuseRelu);
    const memory::desc cmd = channelsMd(data);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, x->mem()},
                                         {DNNL_ARG_DIFF_DST, dy->as(e->pd.diff_dst_desc())},
                                         {DNNL_ARG_SCALE, gamma->as(cmd)},
                                         // NOTE: oneDNN 2.6 wants a SHIFT memory in backward with
                                         // use_shift although no gradient depends on its values.
                                         {DNNL_ARG_SHIFT, gamma->as(cmd)},
                                         {DNNL_ARG_MEAN, mean->as(e->pd.mean_desc())},
                                         {DNNL_ARG_VARIANCE, variance->as(e->pd.variance_desc())}};
    if (fuseRelu) {
      if (!(saved->md() == e->pd.workspace_desc())) throw OpError("'saved' is not this op's workspace");
      args.emplace(DNNL_ARG_WORKSPACE, saved->mem());
    }
    Outputs outs(info.Env());
    auto dx = outs.add(e->pd.diff_src_desc());
    auto dgamma = outs.add(cmd);
    auto dbeta = outs.add(cmd);
    args.emplace(DNNL_ARG_DIFF_SRC, dx.s->mem());
    args.emplace(DNNL_ARG_DIFF_SCALE, dgamma.s->mem());
    args.emplace(DNNL_ARG_DIFF_SHIFT, dbeta.s->mem());
    execute(e->prim, e->pd, std::move(args));
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
  const float eps = 1e-5f;
  if (kind == "batchNormBackward") {
    const auto& pd = bwd(data, eps, fuseRelu)->pd;
    return describePd(env, pd, {{"src", pd.src_desc()}, {"diffSrc", pd.diff_src_desc()}});
  }
  const auto& pd = fwd(data, eps, fuseRelu, kind == "batchNormTrain")->pd;
  return describePd(env, pd, {{"src", pd.src_desc()}, {"dst", pd.dst_desc()}});
}

void exportBatchNorm(Napi::Env env, Napi::Object exports) {
  exports.Set("batchNormTrain", Napi::Function::New(env, BatchNormTrain, "batchNormTrain"));
  exports.Set("batchNormInfer", Napi::Function::New(env, BatchNormInfer, "batchNormInfer"));
  exports.Set("batchNormBackward", Napi::Function::New(env, BatchNormBackward, "batchNormBackward"));
}

}  // namespace rn
