// Linear (fully connected) layer over oneDNN's inner product: forward, backward-data and
// backward-weights (+ bias). Like conv, every desc is format_tag::any and inputs are
// reordered through the storages' copy caches; backward pds take the forward pd as hint.
// Precision bf16 (torch.autocast's on the CPU): x, w and the output gradient enter in bf16
// (converted through the storages' copy caches), the sums accumulate in f32, and the outputs
// (y, dx, dw, db) are f32, so what follows a linear layer never sees a bf16 tensor.
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

memory::desc anyMd(const memory::dims& d, dt type = dt::f32) { return memory::desc(d, type, tag::any); }

Key sizesKey(const char* op, const Sizes& s, dt type) { return Key(op).i(s.N).i(s.I).i(s.O).i(static_cast<int64_t>(type)); }

std::shared_ptr<Cached<Fwd>> fwd(const Sizes& s, bool bias, dt type) {
  return cached<Fwd>(sizesKey("ip_fwd", s, type).i(bias), [&] {
    Fwd::desc d(dnnl::prop_kind::forward_training, anyMd({s.N, s.I}, type), anyMd({s.O, s.I}, type),
                bias ? anyMd({s.O}) : memory::desc(), anyMd({s.N, s.O}));
    return Fwd::primitive_desc(d, defaultAttr(), eng());
  });
}

std::shared_ptr<Cached<BwdData>> bwdData(const Sizes& s, dt type) {
  return cached<BwdData>(sizesKey("ip_bwd_data", s, type), [&] {
    BwdData::desc d(anyMd({s.N, s.I}), anyMd({s.O, s.I}, type), anyMd({s.N, s.O}, type));
    return BwdData::primitive_desc(d, defaultAttr(), eng(), fwd(s, false, type)->pd);
  });
}

std::shared_ptr<Cached<BwdWeights>> bwdWeights(const Sizes& s, bool bias, dt type) {
  return cached<BwdWeights>(sizesKey("ip_bwd_weights", s, type).i(bias), [&] {
    BwdWeights::desc d(anyMd({s.N, s.I}, type), anyMd({s.O, s.I}), bias ? anyMd({s.O}) : memory::desc(),
                       anyMd({s.N, s.O}, type));
    return BwdWeights::primitive_desc(d, defaultAttr(), eng(), fwd(s, bias, type)->pd);
  });
}

// linear(x, w, b | null, N, I, O, precision?) -> y (f32)
Napi::Value Linear(const Napi::CallbackInfo& info) {
  return guarded(info, "linear", [&]() -> Napi::Value {
    Storage* x = Storage::From(info[0], "x");
    Storage* w = Storage::From(info[1], "w");
    Storage* b = optionalStorage(info, 2, "b");
    const Sizes s = sizesArg(info, 3);
    auto e = fwd(s, b != nullptr, precisionArg(info, 6));
    return executeWithOutput(info.Env(), *e, weightedForwardArgs(e->pd, x, w, b), e->pd.dst_desc());
  });
}

// linearBackwardData(dy, w, N, I, O, precision?) -> dx (f32)
Napi::Value LinearBackwardData(const Napi::CallbackInfo& info) {
  return guarded(info, "linearBackwardData", [&]() -> Napi::Value {
    Storage* dy = Storage::From(info[0], "dy");
    Storage* w = Storage::From(info[1], "w");
    const Sizes s = sizesArg(info, 2);
    auto e = bwdData(s, precisionArg(info, 5));
    return executeWithOutput(info.Env(), *e, {{DNNL_ARG_DIFF_DST, dy->as(e->pd.diff_dst_desc())}, {DNNL_ARG_WEIGHTS, w->as(e->pd.weights_desc())}},
                             e->pd.diff_src_desc(), DNNL_ARG_DIFF_SRC);
  });
}

// linearBackwardWeights(x, dy, N, I, O, withBias, precision?) -> { dw, db | null } (f32)
Napi::Value LinearBackwardWeights(const Napi::CallbackInfo& info) {
  return guarded(info, "linearBackwardWeights", [&]() -> Napi::Value {
    Storage* x = Storage::From(info[0], "x");
    Storage* dy = Storage::From(info[1], "dy");
    const Sizes s = sizesArg(info, 2);
    const bool withBias = boolArg(info, 5, "withBias");
    return executeBackwardWeights(info.Env(), *bwdWeights(s, withBias, precisionArg(info, 6)), x, dy, withBias);
  });
}

}  // namespace

void exportInnerProduct(Napi::Env env, Napi::Object exports) {
  exports.Set("linear", Napi::Function::New(env, Linear, "linear"));
  exports.Set("linearBackwardData", Napi::Function::New(env, LinearBackwardData, "linearBackwardData"));
  exports.Set("linearBackwardWeights", Napi::Function::New(env, LinearBackwardWeights, "linearBackwardWeights"));
}

}  // namespace rn
