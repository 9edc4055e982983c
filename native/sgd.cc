// The fused optimiser steps, in place on the parameter and its state buffers: SGD
// (torch.optim.SGD, see SgdParams in backend.ts) and AdamW (torch.optim.AdamW of PyTorch
// 1.13, see AdamwParams). Layout: param and buffers move (once) to the gradient's layout,
// so the weight-gradient primitive's output is used as it comes; one plain loop (the
// compiler vectorises it) then runs over the whole buffers (channel padding is zero in all
// of them and stays zero: a zero gradient and zero moments leave a zero parameter).
#include "common.h"

#include <algorithm>
#include <cmath>
#include <omp.h>

namespace rn {

namespace {

struct SgdCoef { float lr, momentum, keep, wd; bool nesterov, initBuffer; };
/// One tensor of an update: param, gradient, momentum buffer (null without momentum), floats.
struct SgdSpan { float* p; const float* g; float* b; int64_t n; };

// The loop, built for the baseline and for AVX2 + FMA: a momentum step on 4M floats took
// 0.42-0.48 ms with the AVX2 build, 0.75-0.80 ms with the baseline one and 0.40-0.44 ms in the
// addon built with -march=x86-64-v3 (fastest of 25, 2-core Zen 5 shared with other jobs).
namespace base {
#include "sgd_kernel.inc"
}  // namespace base

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
#include "sgd_kernel.inc"
}  // namespace avx2
#pragma GCC pop_options

// The number under key `k` of an options object, or an OpError naming the key.
static double numberField(const Napi::Object& o, const char* k) {
  Napi::Value v = o.Get(k);
  if (!v.IsNumber()) throw OpError(std::string("'") + k + "' must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

// The coefficients of an options object { lr, momentum, dampening, weightDecay, nesterov, initBuffer }.
SgdCoef sgdCoef(const Napi::Object& o) {
  auto num = [&](const char* k) { return static_cast<float>(numberField(o, k)); };
  const float lr = num("lr"), momentum = num("momentum"), dampening = num("dampening"), wd = num("weightDecay");
  return SgdCoef{lr, momentum, 1 - dampening, wd, o.Get("nesterov").ToBoolean().Value(), o.Get("initBuffer").ToBoolean().Value()};
}

// Checks one parameter's storages, moves param and buf (once) to the gradient's layout and
// returns its span; `which` names it in errors ("" for a single update, " 3" in a list).
SgdSpan sgdSpan(Storage* param, Storage* grad, Storage* buf, bool momentum, const std::string& which) {
  if (param->type() != dt::f32 || grad->type() != dt::f32) throw OpError("'param" + which + "' and 'grad" + which + "' must be float32");
  if (momentum && !buf) throw OpError("momentum != 0 needs a buffer" + (which.empty() ? std::string() : " for parameter" + which));
  if (buf && buf->type() != dt::f32) throw OpError("'buf" + which + "' must be float32");
  if (buf == param || buf == grad || grad == param) throw OpError("param" + which + ", grad" + which + " and buf" + which + " must be distinct");
  const bool sameDims = dimsOf(param->md()) == dimsOf(grad->md());
  const memory::desc target = sameDims ? grad->md() : param->md();
  param->convertTo(target);
  if (momentum) buf->convertTo(target);
  return SgdSpan{static_cast<float*>(param->data()), static_cast<const float*>(grad->as(target).get_data_handle()),
                 momentum ? static_cast<float*>(buf->data()) : nullptr, static_cast<int64_t>(param->bytes() / 4)};
}

void runSgd(const std::vector<SgdSpan>& spans, const SgdCoef& c) {
  // No AVX-512 build (not tried): the AVX2 one already matches the old -march=x86-64-v3 speed.
  if (kernelSet() == KernelSet::baseline) base::sgdStep(spans.data(), static_cast<int64_t>(spans.size()), c);
  else avx2::sgdStep(spans.data(), static_cast<int64_t>(spans.size()), c);
}

// sgdUpdate(param, grad, buf | null, { lr, momentum, dampening, weightDecay, nesterov, initBuffer })
Napi::Value SgdUpdate(const Napi::CallbackInfo& info) {
  return guarded(info, "sgdUpdate", [&]() -> Napi::Value {
    Storage* param = Storage::From(info[0], "param");
    Storage* grad = Storage::From(info[1], "grad");
    Storage* buf = optionalStorage(info, 2, "buf");
    const SgdCoef c = sgdCoef(objArg(info, 3, "params"));
    const bool momentum = c.momentum != 0;
    runSgd({sgdSpan(param, grad, buf, momentum, "")}, c);
    param->invalidate();
    if (momentum) buf->invalidate();
    return info.Env().Undefined();
  });
}

// sgdUpdateMany(params[], grads[], bufs (array of storages, or null without momentum), options):
// the same update of every parameter in one call and one OpenMP region.
Napi::Value SgdUpdateMany(const Napi::CallbackInfo& info) {
  return guarded(info, "sgdUpdateMany", [&]() -> Napi::Value {
    if (info.Length() < 4 || !info[0].IsArray() || !info[1].IsArray())
      throw OpError("usage: sgdUpdateMany(params: Storage[], grads: Storage[], bufs: Storage[] | null, options)");
    const Napi::Array ps = info[0].As<Napi::Array>(), gs = info[1].As<Napi::Array>();
    const SgdCoef c = sgdCoef(objArg(info, 3, "params"));
    const bool momentum = c.momentum != 0;
    if (momentum && !info[2].IsArray()) throw OpError("momentum != 0 needs 'bufs', one buffer per parameter");
    const uint32_t n = ps.Length();
    if (gs.Length() != n || (momentum && info[2].As<Napi::Array>().Length() != n))
      throw OpError("params, grads and bufs must have the same length, got " + std::to_string(n) + ", " +
                    std::to_string(gs.Length()) + (momentum ? ", " + std::to_string(info[2].As<Napi::Array>().Length()) : ""));
    std::vector<Storage*> params(n), bufs(n, nullptr);
    std::vector<SgdSpan> spans;
    spans.reserve(n);
    // Every storage written (params, buffers) once, with the parameter that writes it.
    std::unordered_map<const Storage*, uint32_t> written;
    written.reserve(2 * static_cast<size_t>(n));
    for (uint32_t i = 0; i < n; ++i) {
      const std::string which = " " + std::to_string(i);
      params[i] = Storage::From(ps.Get(i), ("param" + which).c_str());
      Storage* grad = Storage::From(gs.Get(i), ("grad" + which).c_str());
      if (momentum) bufs[i] = Storage::From(info[2].As<Napi::Array>().Get(i), ("buf" + which).c_str());
      for (const Storage* s : {params[i], bufs[i]}) {
        if (!s) continue;
        auto [at, fresh] = written.emplace(s, i);
        if (!fresh && at->second != i)
          throw OpError("parameter" + which + " shares a param or buf storage with parameter " + std::to_string(at->second));
      }
      spans.push_back(sgdSpan(params[i], grad, bufs[i], momentum, which));
    }
    runSgd(spans, c);
    for (uint32_t i = 0; i < n; ++i) {
      params[i]->invalidate();
      if (bufs[i]) bufs[i]->invalidate();
    }
    return info.Env().Undefined();
  });
}

// NOTE: AdamW's loop must not fuse a multiply and an add into one FMA (GCC does in C++ unless
// told): each product and sum rounds on its own, as in PyTorch's op-by-op update and in the
// reference backend's Math.fround chain, so the two backends agree to the bit.
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
// adamwUpdate(param, grad, expAvg, expAvgSq, maxExpAvgSq | null,
//             { lr, beta1, beta2, eps, weightDecay, step, amsgrad })
Napi::Value AdamwUpdate(const Napi::CallbackInfo& info) {
  return guarded(info, "adamwUpdate", [&]() -> Napi::Value {
    Storage* param = Storage::From(info[0], "param");
    Storage* grad = Storage::From(info[1], "grad");
    Storage* m = Storage::From(info[2], "expAvg");
    Storage* v = Storage::From(info[3], "expAvgSq");
    Storage* vmax = optionalStorage(info, 4, "maxExpAvgSq");
    const Napi::Object o = objArg(info, 5, "params");
    auto num = [&](const char* k) { return numberField(o, k); };
    const double lr = num("lr"), beta1 = num("beta1"), beta2 = num("beta2"), eps = num("eps"), wd = num("weightDecay");
    const double step = num("step");
    const bool amsgrad = o.Get("amsgrad").ToBoolean().Value();
    if (!(step >= 1) || step != std::floor(step)) throw OpError("'step' must be an integer >= 1");
    if (amsgrad && !vmax) throw OpError("amsgrad needs 'maxExpAvgSq'");
    for (Storage* s : {param, grad, m, v, vmax}) {
      if (s && s->type() != dt::f32) throw OpError("param, grad and the moments must be float32");
    }
    Storage* all[] = {param, grad, m, v, vmax};
    for (int i = 0; i < 5; ++i) {
      for (int j = i + 1; j < 5; ++j) {
        if (all[i] && all[i] == all[j]) throw OpError("param, grad and the moments must be distinct storages");
      }
    }

    const bool sameDims = dimsOf(param->md()) == dimsOf(grad->md());
    const memory::desc target = sameDims ? grad->md() : param->md();
    param->convertTo(target);
    m->convertTo(target);
    v->convertTo(target);
    if (amsgrad) vmax->convertTo(target);
    // The Python-float scalars of torch's _single_tensor_adamw: float64, rounded once.
    const float decay = static_cast<float>(1 - lr * wd);
    const float b1 = static_cast<float>(beta1), b2 = static_cast<float>(beta2);
    const float keep1 = static_cast<float>(1 - beta1), keep2 = static_cast<float>(1 - beta2);
    const float bc2Sqrt = static_cast<float>(std::sqrt(1 - std::pow(beta2, step)));
    const float negStepSize = static_cast<float>(-(lr / (1 - std::pow(beta1, step))));
    const float epsF = static_cast<float>(eps);
    float* p = static_cast<float*>(param->data());
    const float* g = static_cast<const float*>(grad->as(target).get_data_handle());
    float* pm = static_cast<float*>(m->data());
    float* pv = static_cast<float*>(v->data());
    float* pmax = amsgrad ? static_cast<float*>(vmax->data()) : nullptr;
    const int64_t n = static_cast<int64_t>(param->bytes() / 4);
#pragma omp parallel for schedule(static) if (n > 32768)
    for (int64_t k = 0; k < n; ++k) {
      const float gk = g[k];
      const float w = p[k] * decay;
      const float mk = pm[k] * b1 + keep1 * gk;
      const float vk = pv[k] * b2 + keep2 * gk * gk;
      pm[k] = mk;
      pv[k] = vk;
      float s = vk;
      if (pmax) {
        // torch.maximum: NaN if either is NaN.
        s = (vk > pmax[k] || std::isnan(vk)) ? vk : pmax[k];
        pmax[k] = s;
      }
      const float denom = std::sqrt(s) / bc2Sqrt + epsF;
      p[k] = w + negStepSize * mk / denom;
    }
    param->invalidate();
    m->invalidate();
    v->invalidate();
    if (vmax) vmax->invalidate();
    return info.Env().Undefined();
  });
}
#pragma GCC pop_options

}  // namespace

void exportSgd(Napi::Env env, Napi::Object exports) {
  exports.Set("sgdUpdate", Napi::Function::New(env, SgdUpdate, "sgdUpdate"));
  exports.Set("sgdUpdateMany", Napi::Function::New(env, SgdUpdateMany, "sgdUpdateMany"));
  exports.Set("adamwUpdate", Napi::Function::New(env, AdamwUpdate, "adamwUpdate"));
}

}  // namespace rn
