// Elementwise binary ops on same-shaped tensors: add and mul over oneDNN's binary primitive
// (in a's layout, or b's when a is plain and b is not; the other input is reordered; bf16
// when both are bf16, else f32), and
// the in-place y = alpha * y + beta * x used for gradient accumulation. The latter is
// oneDNN's binary add in place for y += x on all but tiny tensors, else a loop over the whole
// buffer in y's type (f32, or bf16 for a bf16 activation's gradient): x is first brought to
// y's desc, and padding is zero in both, so it stays zero. int32 inputs use plain loops.
#include "common.h"

#include <omp.h>

namespace rn {

namespace {

using Binary = dnnl::binary;

/// Elements from which y += x runs as oneDNN's binary add rather than a loop (a tiny vector,
/// such as batch norm's running statistics, is cheaper as the loop).
constexpr int64_t kBinaryMin = 4096;

template <class T, class F>
void zipPlain(Storage* a, Storage* b, Storage* out, F f) {
  const memory::desc plain = out->md();
  const T* pa = static_cast<const T*>(a->as(plain).get_data_handle());
  const T* pb = static_cast<const T*>(b->as(plain).get_data_handle());
  T* po = static_cast<T*>(out->data());
  const int64_t n = numelOf(dimsOf(plain));
  for (int64_t k = 0; k < n; ++k) po[k] = f(pa[k], pb[k]);
}

Napi::Value binaryOp(const Napi::CallbackInfo& info, dnnl::algorithm alg, bool relu = false) {
  Storage* a = Storage::From(info[0], "a");
  Storage* b = Storage::From(info[1], "b");
  if (a->type() != b->type() && !(isFloat(a->type()) && isFloat(b->type())))
    throw OpError("'a' and 'b' must have the same dtype");
  Outputs outs(info.Env());
  if (a->type() == dt::s32) {
    auto y = outs.add(plainDesc(dimsOf(a->md()), dt::s32));
    if (alg == dnnl::algorithm::binary_add && relu) zipPlain<int32_t>(a, b, y.s, [](int32_t p, int32_t q) { return std::max(p + q, 0); });
    else if (alg == dnnl::algorithm::binary_add) zipPlain<int32_t>(a, b, y.s, [](int32_t p, int32_t q) { return p + q; });
    else zipPlain<int32_t>(a, b, y.s, [](int32_t p, int32_t q) { return p * q; });
    outs.commit();
    return y.obj;
  }
  if (!isFloat(a->type())) throw OpError("'a' must be float32 or int32");
  const bool useB = isPlain(a->md()) && !isPlain(b->md()) && dimsOf(a->md()) == dimsOf(b->md());
  // bf16 + bf16 stays bf16 (mixed precision); f32 with bf16 is computed in f32
  const memory::desc md = withType(useB ? b->md() : a->md(), a->type() == b->type() ? a->type() : dt::f32);
  auto e = cached<Binary>(Key("binary").i(static_cast<int64_t>(alg)).i(relu).md(md), [&] {
    dnnl::primitive_attr attr = defaultAttr();
    if (relu) {  // the residual block's end: relu(a + b) in one pass (a post-op)
      dnnl::post_ops po;
      po.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
      attr.set_post_ops(po);
    }
    return Binary::primitive_desc(Binary::desc(alg, md, md, md), attr, eng());
  });
  const memory ma = a->as(md), mb = b->as(md);
  auto y = outs.add(e->pd.dst_desc());
  execute(e->prim, e->pd, {{DNNL_ARG_SRC_0, ma}, {DNNL_ARG_SRC_1, mb}, {DNNL_ARG_DST, y.s->mem()}});
  outs.commit();
  return y.obj;
}

// add(a, b, relu = false) -> a + b, or relu(a + b)
Napi::Value Add(const Napi::CallbackInfo& info) {
  return guarded(info, "add", [&]() -> Napi::Value {
    return binaryOp(info, dnnl::algorithm::binary_add, optionalBoolArg(info, 2, "relu"));
  });
}

// mul(a, b) -> a * b
Napi::Value Mul(const Napi::CallbackInfo& info) {
  return guarded(info, "mul", [&]() -> Napi::Value { return binaryOp(info, dnnl::algorithm::binary_mul); });
}

// axpbyInPlace(y, x, alpha, beta): y = alpha * y + beta * x, in y's layout
Napi::Value AxpbyInPlace(const Napi::CallbackInfo& info) {
  return guarded(info, "axpbyInPlace", [&]() -> Napi::Value {
    Storage* y = Storage::From(info[0], "y");
    Storage* x = Storage::From(info[1], "x");
    const double alpha = numArg(info, 2, "alpha"), beta = numArg(info, 3, "beta");
    const memory xm = x->as(y->md());
    const int64_t n = static_cast<int64_t>(y->bytes() / 4);
    if (alpha == 1 && beta == 1 && isFloat(y->type()) && numelOf(dimsOf(y->md())) >= kBinaryMin) {
      // y += x (the gradient of a tensor read twice, e.g. a residual block's input): oneDNN's
      // binary add in place, in y's layout and type. The same sum, rounded the same way (f32,
      // or f32 rounded once to bf16), as the loop below, at the memory's speed: the loop over
      // bf16 took 5% of a bf16 resnet20 training step (perf), oneDNN's add a quarter of that.
      const memory::desc md = y->md();
      auto e = cached<Binary>(Key("binary-inplace").md(md), [&] {
        return Binary::primitive_desc(Binary::desc(dnnl::algorithm::binary_add, md, md, md), defaultAttr(), eng());
      });
      const memory ym = y->mem();
      execute(e->prim, e->pd, {{DNNL_ARG_SRC_0, ym}, {DNNL_ARG_SRC_1, xm}, {DNNL_ARG_DST, ym}});
    } else if (y->type() == dt::bf16) {
      // A bf16 activation's gradient (mixed precision) stays bf16, as the next bf16 consumer
      // reads it: summed in float, rounded once (x, if f32, is rounded to bf16 first).
      const int64_t m = static_cast<int64_t>(y->bytes() / 2);
      const float a = static_cast<float>(alpha), b = static_cast<float>(beta);
      bf16_t* py = static_cast<bf16_t*>(y->data());
      const bf16_t* px = static_cast<const bf16_t*>(xm.get_data_handle());
#pragma omp parallel for simd schedule(static) if (m > 65536)
      for (int64_t k = 0; k < m; ++k) storeF(py, k, a * loadF(py, k) + b * loadF(px, k));
    } else if (y->type() == dt::f32) {
      const float a = static_cast<float>(alpha), b = static_cast<float>(beta);
      float* py = static_cast<float*>(y->data());
      const float* px = static_cast<const float*>(xm.get_data_handle());
#pragma omp parallel for schedule(static) if (n > 32768)
      for (int64_t k = 0; k < n; ++k) py[k] = a * py[k] + b * px[k];
    } else if (y->type() == dt::s32) {
      int32_t* py = static_cast<int32_t*>(y->data());
      const int32_t* px = static_cast<const int32_t*>(xm.get_data_handle());
      for (int64_t k = 0; k < n; ++k) py[k] = static_cast<int32_t>(alpha * py[k] + beta * px[k]);
    } else {
      throw OpError("'y' must be float32 or int32");
    }
    y->invalidate();
    return info.Env().Undefined();
  });
}

}  // namespace

void exportBinary(Napi::Env env, Napi::Object exports) {
  exports.Set("add", Napi::Function::New(env, Add, "add"));
  exports.Set("mul", Napi::Function::New(env, Mul, "mul"));
  exports.Set("axpbyInPlace", Napi::Function::New(env, AxpbyInPlace, "axpbyInPlace"));
}

}  // namespace rn
