// Linear (fully connected) layer over oneDNN's inner product: forward, backward-data and
// backward-weights (+ bias). Like conv, every desc is format_tag::any and inputs are
// reordered through the storages' copy caches; backward pds take the forward pd as hint.
// x: [N, I], w: [O, I], b: [O], y: [N, O].
#include "common.h"

namespace rn {

namespace {

using Fwd = dnnl::inner_product_forward;
using BwdData = dnnl::inner_product_backward_data;
using BwdWeights = dnnl::inner_product_backward_weights;

struct Sizes {
  int64_t N, I, O;
};

Sizes sizesArg(const Napi::CallbackInfo& info, size_t at) {
  Sizes s{static_cast<int64_t>(numArg(info, at, "N")), static_cast<int64_t>(numArg(info, at + 1, "I")),
          static_cast<int64_t>(numArg(info, at + 2, "O"))};
  if (s.N < 1 || s.I < 1 || s.O < 1) throw OpError("N, I and O must be >= 1");
  return s;
}

memory::desc anyMd(const memory::dims& d) { return memory::desc(d, dt::f32, tag::any); }

std::shared_ptr<Cached<Fwd>> fwd(const Sizes& s, bool bias) {
  return cached<Fwd>(Key("ip_fwd").i(s.N).i(s.I).i(s.O).i(bias), [&] {
    Fwd::desc d(dnnl::prop_kind::forward_training, anyMd({s.N, s.I}), anyMd({s.O, s.I}),
                bias ? anyMd({s.O}) : memory::desc(), anyMd({s.N, s.O}));
    return Fwd::primitive_desc(d, defaultAttr(), eng());
  });
}

std::shared_ptr<Cached<BwdData>> bwdData(const Sizes& s) {
  return cached<BwdData>(Key("ip_bwd_data").i(s.N).i(s.I).i(s.O), [&] {
    BwdData::desc d(anyMd({s.N, s.I}), anyMd({s.O, s.I}), anyMd({s.N, s.O}));
    return BwdData::primitive_desc(d, defaultAttr(), eng(), fwd(s, false)->pd);
  });
}

std::shared_ptr<Cached<BwdWeights>> bwdWeights(const Sizes& s, bool bias) {
  return cached<BwdWeights>(Key("ip_bwd_weights").i(s.N).i(s.I).i(s.O).i(bias), [&] {
    BwdWeights::desc d(anyMd({s.N, s.I}), anyMd({s.O, s.I}), bias ? anyMd({s.O}) : memory::desc(),
                       anyMd({s.N, s.O}));
    return BwdWeights::primitive_desc(d, defaultAttr(), eng(), fwd(s, bias)->pd);
  });
}

// linear(x, w, b | null, N, I, O) -> y
Napi::Value Linear(const Napi::CallbackInfo& info) {
  return guarded(info, "linear", [&]() -> Napi::Value {
    Storage* x = Storage::From(info[0], "x");
    Storage* w = Storage::From(info[1], "w");
    Storage* b = optionalStorage(info, 2, "b");
    const Sizes s = sizesArg(info, 3);
    auto e = fwd(s, b != nullptr);
    return executeWithOutput(info.Env(), *e, weightedForwardArgs(e->pd, x, w, b), e->pd.dst_desc());
  });
}

// linearBackwardData(dy, w, N, I, O) -> dx
Napi::Value LinearBackwardData(const Napi::CallbackInfo& info) {
  return guarded(info, "linearBackwardData", [&]() -> Napi::Value {
    Storage* dy = Storage::From(info[0], "dy");
    Storage* w = Storage::From(info[1], "w");
    const Sizes s = sizesArg(info, 2);
    auto e = bwdData(s);
    return executeWithOutput(info.Env(), *e, {{DNNL_ARG_DIFF_DST, dy->as(e->pd.diff_dst_desc())}, {DNNL_ARG_WEIGHTS, w->as(e->pd.weights_desc())}},
                             e->pd.diff_src_desc(), DNNL_ARG_DIFF_SRC);
  });
}

// linearBackwardWeights(x, dy, N, I, O, withBias) -> { dw, db | null }
Napi::Value LinearBackwardWeights(const Napi::CallbackInfo& info) {
  return guarded(info, "linearBackwardWeights", [&]() -> Napi::Value {
    Storage* x = Storage::From(info[0], "x");
    Storage* dy = Storage::From(info[1], "dy");
    const Sizes s = sizesArg(info, 2);
    const bool withBias = boolArg(info, 5, "withBias");
    return executeBackwardWeights(info.Env(), *bwdWeights(s, withBias), x, dy, withBias);
  });
}

}  // namespace

void exportInnerProduct(Napi::Env env, Napi::Object exports) {
  exports.Set("linear", Napi::Function::New(env, Linear, "linear"));
  exports.Set("linearBackwardData", Napi::Function::New(env, LinearBackwardData, "linearBackwardData"));
  exports.Set("linearBackwardWeights", Napi::Function::New(env, LinearBackwardWeights, "linearBackwardWeights"));
}

}  // namespace rn
