// The fused SGD step (torch.optim.SGD semantics, see SgdParams in backend.ts), in place on
// param and momentum buffer. Layout: param and buffer move (once) to the gradient's layout,
// so the weight-gradient primitive's output is used as it comes; one loop then runs over
// the three whole buffers (channel padding is zero in all of them and stays zero).
#include "common.h"

#include <omp.h>

namespace rn {

namespace {

struct SgdCoef { float lr, momentum, keep, wd; bool nesterov, initBuffer; };

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

// sgdUpdate(param, grad, buf | null, { lr, momentum, dampening, weightDecay, nesterov, initBuffer })
Napi::Value SgdUpdate(const Napi::CallbackInfo& info) {
  return guarded(info, "sgdUpdate", [&]() -> Napi::Value {
    Storage* param = Storage::From(info[0], "param");
    Storage* grad = Storage::From(info[1], "grad");
    Storage* buf = optionalStorage(info, 2, "buf");
    const Napi::Object o = objArg(info, 3, "params");
    auto num = [&](const char* k) {
      Napi::Value v = o.Get(k);
      if (!v.IsNumber()) throw OpError(std::string("'") + k + "' must be a number");
      return static_cast<float>(v.As<Napi::Number>().DoubleValue());
    };
    const float lr = num("lr"), momentum = num("momentum"), dampening = num("dampening"), wd = num("weightDecay");
    const bool nesterov = o.Get("nesterov").ToBoolean().Value();
    const bool initBuffer = o.Get("initBuffer").ToBoolean().Value();
    if (param->type() != dt::f32 || grad->type() != dt::f32) throw OpError("'param' and 'grad' must be float32");
    if (momentum != 0 && !buf) throw OpError("momentum != 0 needs a buffer");
    if (buf && buf->type() != dt::f32) throw OpError("'buf' must be float32");
    if (buf == param || buf == grad || grad == param) throw OpError("param, grad and buf must be distinct");

    const bool sameDims = dimsOf(param->md()) == dimsOf(grad->md());
    const memory::desc target = sameDims ? grad->md() : param->md();
    param->convertTo(target);
    const bool useBuf = momentum != 0;
    if (useBuf) buf->convertTo(target);
    float* p = static_cast<float*>(param->data());
    const float* g = static_cast<const float*>(grad->as(target).get_data_handle());
    float* b = useBuf ? static_cast<float*>(buf->data()) : nullptr;
    const int64_t n = static_cast<int64_t>(param->bytes() / 4);
    const SgdCoef c{lr, momentum, 1 - dampening, wd, nesterov, initBuffer};
    // No AVX-512 build (not tried): the AVX2 one already matches the old -march=x86-64-v3 speed.
    if (kernelSet() == KernelSet::baseline) base::sgdStep(p, g, b, n, c);
    else avx2::sgdStep(p, g, b, n, c);
    param->invalidate();
    if (buf) buf->invalidate();
    return info.Env().Undefined();
  });
}

}  // namespace

void exportSgd(Napi::Env env, Napi::Object exports) {
  exports.Set("sgdUpdate", Napi::Function::New(env, SgdUpdate, "sgdUpdate"));
}

}  // namespace rn
