// Max and average 2-D pooling (incl. global) over oneDNN, forward and backward. The src
// layout and type (f32, or bf16 under mixed precision) are x's own, dst's layout is chosen
// by oneDNN (format_tag::any). Max pool's forward runs as
// forward_training and returns its workspace as `saved` (which also remembers the forward
// src desc, so the backward can rebuild the forward pd as its hint). Padding is symmetric
// (PyTorch, floor mode). x: [N, C, H, W], y: [N, C, OH, OW].
#include "common.h"

namespace rn {

namespace {

using Fwd = dnnl::pooling_forward;
using Bwd = dnnl::pooling_backward;

struct PoolGeom {
  int64_t N, C, H, W, OH, OW, kH, kW, sH, sW, pH, pW;
  memory::dims src() const { return {N, C, H, W}; }
  memory::dims dst() const { return {N, C, OH, OW}; }
  memory::dims strides() const { return {sH, sW}; }
  memory::dims kernel() const { return {kH, kW}; }
  memory::dims padL() const { return {pH, pW}; }
  memory::dims padR() const { return {padRight(H, OH, kH, sH, pH, 1), padRight(W, OW, kW, sW, pW, 1)}; }
};

const std::vector<const char*> kPoolFields = {"N", "C", "H", "W", "OH", "OW", "kernelH", "kernelW",
                                              "strideH", "strideW", "padH", "padW"};

PoolGeom poolGeom(const std::vector<int64_t>& v) {
  PoolGeom g{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11]};
  if (g.sH < 1 || g.sW < 1 || g.kH < 1 || g.kW < 1) throw OpError("kernel and strides must be >= 1");
  return g;
}

Key poolKey(const char* op, dnnl::algorithm alg, const memory::desc& src, const PoolGeom& g) {
  Key k(op);
  k.i(static_cast<int64_t>(alg)).md(src);
  for (int64_t v : {g.OH, g.OW, g.kH, g.kW, g.sH, g.sW, g.pH, g.pW}) k.i(v);
  return k;
}

dnnl::algorithm avgAlg(bool countIncludePad) {
  return countIncludePad ? dnnl::algorithm::pooling_avg_include_padding
                         : dnnl::algorithm::pooling_avg_exclude_padding;
}

// forward_training (max pool: with the workspace its backward needs), or forward_inference.
std::shared_ptr<Cached<Fwd>> fwd(dnnl::algorithm alg, const memory::desc& src, const PoolGeom& g,
                                 dnnl::prop_kind prop = dnnl::prop_kind::forward_training) {
  const bool training = prop == dnnl::prop_kind::forward_training;
  return cached<Fwd>(poolKey(training ? "pool_fwd" : "pool_fwd_inference", alg, src, g), [&] {
    Fwd::desc d(prop, alg, src, memory::desc(g.dst(), src.data_type(), tag::any),
                g.strides(), g.kernel(), g.padL(), g.padR());
    return Fwd::primitive_desc(d, defaultAttr(), eng());
  });
}

std::shared_ptr<Cached<Bwd>> bwd(dnnl::algorithm alg, const memory::desc& src, const PoolGeom& g) {
  return cached<Bwd>(poolKey("pool_bwd", alg, src, g), [&] {
    auto hint = fwd(alg, src, g);
    Bwd::desc d(alg, src, hint->pd.dst_desc(), g.strides(), g.kernel(), g.padL(), g.padR());
    return Bwd::primitive_desc(d, defaultAttr(), eng(), hint->pd);
  });
}

// maxPool2d(x, geometry) -> { y, saved }
Napi::Value MaxPool2d(const Napi::CallbackInfo& info) {
  return guarded(info, "maxPool2d", [&]() -> Napi::Value {
    Storage* x = Storage::From(info[0], "x");
    const PoolGeom g = poolGeom(geometryArg(info, 1, kPoolFields));
    auto e = fwd(dnnl::algorithm::pooling_max, x->md(), g);
    Outputs outs(info.Env());
    auto y = outs.add(e->pd.dst_desc());
    auto ws = outs.add(e->pd.workspace_desc());
    ws.s->meta.push_back(x->md());
    execute(e->prim, e->pd, {{DNNL_ARG_SRC, x->mem()}, {DNNL_ARG_DST, y.s->mem()}, {DNNL_ARG_WORKSPACE, ws.s->mem()}});
    outs.commit();
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("y", y.obj);
    o.Set("saved", ws.obj);
    return o;
  });
}

// maxPool2dBackward(dy, saved, geometry) -> dx
Napi::Value MaxPool2dBackward(const Napi::CallbackInfo& info) {
  return guarded(info, "maxPool2dBackward", [&]() -> Napi::Value {
    Storage* dy = Storage::From(info[0], "dy");
    Storage* saved = Storage::From(info[1], "saved");
    const PoolGeom g = poolGeom(geometryArg(info, 2, kPoolFields));
    if (saved->meta.empty()) throw OpError("'saved' is not a max pool workspace");
    auto e = bwd(dnnl::algorithm::pooling_max, saved->meta[0], g);
    if (!(saved->md() == e->pd.workspace_desc())) throw OpError("'saved' does not match this geometry");
    return executeWithOutput(info.Env(), *e, {{DNNL_ARG_DIFF_DST, dy->as(e->pd.diff_dst_desc())}, {DNNL_ARG_WORKSPACE, saved->mem()}},
                             e->pd.diff_src_desc(), DNNL_ARG_DIFF_SRC);
  });
}

// avgPool2d(x, geometry, countIncludePad) -> y
Napi::Value AvgPool2d(const Napi::CallbackInfo& info) {
  return guarded(info, "avgPool2d", [&]() -> Napi::Value {
    Storage* x = Storage::From(info[0], "x");
    const PoolGeom g = poolGeom(geometryArg(info, 1, kPoolFields));
    auto e = fwd(avgAlg(boolArg(info, 2, "countIncludePad")), x->md(), g);
    return executeWithOutput(info.Env(), *e, {{DNNL_ARG_SRC, x->mem()}}, e->pd.dst_desc());
  });
}

// avgPool2dBackward(dy, geometry, countIncludePad) -> dx (in dy's layout family)
Napi::Value AvgPool2dBackward(const Napi::CallbackInfo& info) {
  return guarded(info, "avgPool2dBackward", [&]() -> Napi::Value {
    Storage* dy = Storage::From(info[0], "dy");
    const PoolGeom g = poolGeom(geometryArg(info, 1, kPoolFields));
    // The forward's src layout is not known here: follow dy's, or (for a plain dy, e.g.
    // the global pool's gradient coming back through a reshape) the convolutions' layout.
    const memory::desc src = isPlain(dy->md()) ? preferredActivationDesc(g.src()) : sameLayout(dy->md(), g.src());
    auto e = bwd(avgAlg(boolArg(info, 2, "countIncludePad")), src, g);
    return executeWithOutput(info.Env(), *e, {{DNNL_ARG_DIFF_DST, dy->as(e->pd.diff_dst_desc())}}, e->pd.diff_src_desc(),
                             DNNL_ARG_DIFF_SRC);
  });
}

}  // namespace

// kinds: maxPool2d, maxPool2dBackward, avgPool2d, avgPool2dBackward;
// params: geometry fields plus { format, countIncludePad }
Napi::Value poolImplInfo(Napi::Env env, const std::string& kind, const Napi::Object& p) {
  dnnl::algorithm alg;
  if (kind == "maxPool2d" || kind == "maxPool2dBackward") alg = dnnl::algorithm::pooling_max;
  else if (kind == "avgPool2d" || kind == "avgPool2dBackward")
    alg = avgAlg(p.Has("countIncludePad") && p.Get("countIncludePad").ToBoolean().Value());
  else return Napi::Value();
  const PoolGeom g = poolGeom(geometryFields(p, kPoolFields));
  const std::string fmt = p.Has("format") && p.Get("format").IsString() ? p.Get("format").As<Napi::String>().Utf8Value()
                                                                          : "plain";
  const memory::desc src = descFromFormat(g.src(), implInfoPrecision(p), fmt);
  if (kind == "maxPool2d" || kind == "avgPool2d") {
    const auto& pd = fwd(alg, src, g)->pd;
    return describePd(env, pd, {{"src", pd.src_desc()}, {"dst", pd.dst_desc()}});
  }
  const auto& pd = bwd(alg, src, g)->pd;
  return describePd(env, pd, {{"diffDst", pd.diff_dst_desc()}, {"diffSrc", pd.diff_src_desc()}});
}

std::shared_ptr<Cached<dnnl::pooling_forward>> maxPoolInference(const memory::desc& src, const std::vector<int64_t>& geometry) {
  return fwd(dnnl::algorithm::pooling_max, src, poolGeom(geometry), dnnl::prop_kind::forward_inference);
}

void exportPool(Napi::Env env, Napi::Object exports) {
  exports.Set("maxPool2d", Napi::Function::New(env, MaxPool2d, "maxPool2d"));
  exports.Set("maxPool2dBackward", Napi::Function::New(env, MaxPool2dBackward, "maxPool2dBackward"));
  exports.Set("avgPool2d", Napi::Function::New(env, AvgPool2d, "avgPool2d"));
  exports.Set("avgPool2dBackward", Napi::Function::New(env, AvgPool2dBackward, "avgPool2dBackward"));
}

}  // namespace rn
