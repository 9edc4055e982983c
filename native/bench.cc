// The bare-oneDNN side of bench/ops.ts: one convolution pass made the way oneDNN's own
// examples make it (format_tag::any everywhere, memories allocated by oneDNN in the chosen
// layouts, library-managed scratchpad), executed and timed here in C++. Nothing else uses it.
// The last geometry's state is kept, so alternating calls do not re-allocate.
#include "common.h"

#include <chrono>
#include <cstring>

namespace rn {

namespace {

struct BenchState {
  std::string key;
  dnnl::primitive prim;
  std::unordered_map<int, memory> args;
};

thread_local BenchState* gBench = nullptr;  // per JS thread, as its stream

memory filled(const memory::desc& md, uint32_t seed) {
  memory m(md, eng());
  float* p = static_cast<float*>(m.get_data_handle());
  const size_t n = md.get_size() / sizeof(float);
  uint32_t s = seed;
  for (size_t k = 0; k < n; ++k) {
    s = s * 1664525u + 1013904223u;
    p[k] = static_cast<float>(s >> 8) / 16777216.0f * 2.0f - 1.0f;
  }
  return m;
}

BenchState& prepare(const ConvGeom& g, const std::string& pass) {
  Key key("bench");
  for (int64_t v : {g.N, g.C, g.H, g.W, g.K, g.R, g.S, g.OH, g.OW, g.strideH, g.strideW, g.padH, g.padW, g.dilH,
                    g.dilW, g.groups})
    key.i(v);
  const std::string k = key.str() + pass;
  if (gBench && gBench->key == k) return *gBench;
  delete gBench;
  gBench = nullptr;
  auto* st = new BenchState();
  st->key = k;
  const dnnl::primitive_attr attr;  // library scratchpad, as oneDNN's examples
  auto fwdPd = convFwdPd(g, false, attr);
  if (pass == "forward") {
    st->prim = dnnl::convolution_forward(fwdPd);
    st->args = {{DNNL_ARG_SRC, filled(fwdPd.src_desc(), 1)},
                {DNNL_ARG_WEIGHTS, filled(fwdPd.weights_desc(), 2)},
                {DNNL_ARG_DST, memory(fwdPd.dst_desc(), eng())}};
  } else if (pass == "backward_data") {
    auto pd = convBwdDataPd(g, fwdPd, attr);
    st->prim = dnnl::convolution_backward_data(pd);
    st->args = {{DNNL_ARG_DIFF_DST, filled(pd.diff_dst_desc(), 3)},
                {DNNL_ARG_WEIGHTS, filled(pd.weights_desc(), 2)},
                {DNNL_ARG_DIFF_SRC, memory(pd.diff_src_desc(), eng())}};
  } else if (pass == "backward_weights") {
    auto pd = convBwdWeightsPd(g, false, fwdPd, attr);
    st->prim = dnnl::convolution_backward_weights(pd);
    st->args = {{DNNL_ARG_SRC, filled(pd.src_desc(), 1)},
                {DNNL_ARG_DIFF_DST, filled(pd.diff_dst_desc(), 3)},
                {DNNL_ARG_DIFF_WEIGHTS, memory(pd.diff_weights_desc(), eng())}};
  } else {
    delete st;
    throw OpError("pass must be 'forward', 'backward_data' or 'backward_weights'");
  }
  gBench = st;
  return *st;
}

// benchConv(geometry, pass, iters, warmup = 2) -> Float64Array of per-iteration ms
Napi::Value BenchConv(const Napi::CallbackInfo& info) {
  return guarded(info, "benchConv", [&]() -> Napi::Value {
    const ConvGeom g = convGeom(geometryArg(info, 0, kConvFields));
    if (info.Length() < 2 || !info[1].IsString()) throw OpError("'pass' must be a string");
    const std::string pass = info[1].As<Napi::String>().Utf8Value();
    const int64_t iters = static_cast<int64_t>(numArg(info, 2, "iters"));
    const int64_t warmup = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().Int64Value() : 2;
    if (iters < 1 || warmup < 0) throw OpError("iters must be >= 1 and warmup >= 0");
    BenchState& st = prepare(g, pass);
    for (int64_t k = 0; k < warmup; ++k) {
      st.prim.execute(strm(), st.args);
      strm().wait();
    }
    auto out = Napi::Float64Array::New(info.Env(), static_cast<size_t>(iters));
    for (int64_t k = 0; k < iters; ++k) {
      const auto t0 = std::chrono::steady_clock::now();
      st.prim.execute(strm(), st.args);
      strm().wait();
      const auto t1 = std::chrono::steady_clock::now();
      out[static_cast<size_t>(k)] = std::chrono::duration<double, std::milli>(t1 - t0).count();
    }
    return out;
  });
}

// benchRelease(): drops the kept bench state
Napi::Value BenchRelease(const Napi::CallbackInfo& info) {
  return guarded(info, "benchRelease", [&]() -> Napi::Value {
    delete gBench;
    gBench = nullptr;
    return info.Env().Undefined();
  });
}

}  // namespace

void exportBench(Napi::Env env, Napi::Object exports) {
  exports.Set("benchConv", Napi::Function::New(env, BenchConv, "benchConv"));
  exports.Set("benchRelease", Napi::Function::New(env, BenchRelease, "benchRelease"));
}

}  // namespace rn
