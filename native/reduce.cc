// Reductions: the sum of all elements, accumulated in double (int64 for int32), over the
// whole buffer in whatever layout it has (blocked padding is zero, so it adds nothing).
// Per-thread partial sums are combined in thread order, so a fixed thread count gives a
// reproducible result.
#include "common.h"

#include <omp.h>

namespace rn {

namespace {

template <class T, class Acc>
Acc sumAll(const T* p, int64_t n) {
  const int nt = n > 65536 ? numThreads() : 1;
  std::vector<Acc> part(static_cast<size_t>(nt), Acc(0));
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int t = omp_get_thread_num(), T_ = omp_get_num_threads();
    const int64_t lo = n * t / T_, hi = n * (t + 1) / T_;
    Acc s = 0;
    for (int64_t k = lo; k < hi; ++k) s += p[k];
    part[static_cast<size_t>(t)] = s;
  }
  Acc total = 0;
  for (Acc s : part) total += s;
  return total;
}

// sum(x) -> scalar storage (dims [1]) of x's dtype
Napi::Value Sum(const Napi::CallbackInfo& info) {
  return guarded(info, "sum", [&]() -> Napi::Value {
    Storage* x = Storage::From(info[0], "x");
    const int64_t n = static_cast<int64_t>(x->bytes() / 4);
    Outputs outs(info.Env());
    if (x->type() == dt::bf16) {  // summed as the f32 it stands for
      const memory m = x->as(withType(x->md(), dt::f32));
      const double s = sumAll<float, double>(static_cast<const float*>(m.get_data_handle()),
                                             static_cast<int64_t>(x->bytes() / 2));
      auto y = outs.add(plainDesc({1}, dt::f32));
      *static_cast<float*>(y.s->data()) = static_cast<float>(s);
      outs.commit();
      return y.obj;
    }
    if (x->type() == dt::f32) {
      const double s = sumAll<float, double>(static_cast<const float*>(x->data()), n);
      auto y = outs.add(plainDesc({1}, dt::f32));
      *static_cast<float*>(y.s->data()) = static_cast<float>(s);
      outs.commit();
      return y.obj;
    }
    if (x->type() != dt::s32) throw OpError("'x' must be float32 or int32");
    const int64_t s = sumAll<int32_t, int64_t>(static_cast<const int32_t*>(x->data()), n);
    auto y = outs.add(plainDesc({1}, dt::s32));
    *static_cast<int32_t*>(y.s->data()) = static_cast<int32_t>(s);
    outs.commit();
    return y.obj;
  });
}

}  // namespace

void exportReduce(Napi::Env env, Napi::Object exports) {
  exports.Set("sum", Napi::Function::New(env, Sum, "sum"));
}

}  // namespace rn
