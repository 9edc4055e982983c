// Mean softmax cross-entropy with label smoothing (PyTorch's CrossEntropyLoss:
// target = (1 - s) * onehot + s / K) and its backward, as plain C++ loops over plain rows:
// N x K is tiny next to the convolutions. Accumulates in double; serial, so the result does
// not depend on the thread count. logits: [N, K] float32, labels: [N] int32.
#include "common.h"

#include <algorithm>
#include <cmath>

namespace rn {

namespace {

const int32_t* labelsOf(Storage* labels, int64_t N, int64_t K) {
  if (labels->type() != dt::s32) throw OpError("'labels' must be int32");
  const int32_t* p = static_cast<const int32_t*>(labels->as(plainDesc({N}, dt::s32)).get_data_handle());
  for (int64_t n = 0; n < N; ++n)
    if (p[n] < 0 || p[n] >= K)
      throw OpError("label " + std::to_string(p[n]) + " at row " + std::to_string(n) + " is outside [0, " +
                    std::to_string(K) + ")");
  return p;
}

// softmaxCrossEntropy(logits, labels, N, K, smoothing) -> { loss: [], probs: [N, K] }
Napi::Value SoftmaxCrossEntropy(const Napi::CallbackInfo& info) {
  return guarded(info, "softmaxCrossEntropy", [&]() -> Napi::Value {
    Storage* logits = Storage::From(info[0], "logits");
    Storage* labels = Storage::From(info[1], "labels");
    const int64_t N = static_cast<int64_t>(numArg(info, 2, "N")), K = static_cast<int64_t>(numArg(info, 3, "K"));
    const double s = numArg(info, 4, "smoothing");
    if (N < 1 || K < 1) throw OpError("N and K must be >= 1");
    if (logits->type() != dt::f32) throw OpError("'logits' must be float32");
    const float* x = static_cast<const float*>(logits->as(plainDesc({N, K}, dt::f32)).get_data_handle());
    const int32_t* y = labelsOf(labels, N, K);
    Outputs outs(info.Env());
    auto loss = outs.add(plainDesc({1}, dt::f32));
    auto probs = outs.add(plainDesc({N, K}, dt::f32));
    float* p = static_cast<float*>(probs.s->data());
    double total = 0;
    for (int64_t n = 0; n < N; ++n) {
      const float* row = x + n * K;
      const double m = *std::max_element(row, row + K);
      double sumExp = 0;
      for (int64_t k = 0; k < K; ++k) sumExp += std::exp(row[k] - m);
      const double logZ = m + std::log(sumExp);
      double sumLogp = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double logp = row[k] - logZ;
        sumLogp += logp;
        p[n * K + k] = static_cast<float>(std::exp(logp));
      }
      total -= (1 - s) * (row[y[n]] - logZ) + s / K * sumLogp;
    }
    *static_cast<float*>(loss.s->data()) = static_cast<float>(total / N);
    outs.commit();
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("loss", loss.obj);
    o.Set("probs", probs.obj);
    return o;
  });
}

// softmaxCrossEntropyBackward(probs, labels, N, K, smoothing, dloss) -> dlogits: [N, K]
Napi::Value SoftmaxCrossEntropyBackward(const Napi::CallbackInfo& info) {
  return guarded(info, "softmaxCrossEntropyBackward", [&]() -> Napi::Value {
    Storage* probs = Storage::From(info[0], "probs");
    Storage* labels = Storage::From(info[1], "labels");
    const int64_t N = static_cast<int64_t>(numArg(info, 2, "N")), K = static_cast<int64_t>(numArg(info, 3, "K"));
    const double s = numArg(info, 4, "smoothing"), dloss = numArg(info, 5, "dloss");
    if (N < 1 || K < 1) throw OpError("N and K must be >= 1");
    if (probs->type() != dt::f32) throw OpError("'probs' must be float32");
    const float* p = static_cast<const float*>(probs->as(plainDesc({N, K}, dt::f32)).get_data_handle());
    const int32_t* y = labelsOf(labels, N, K);
    Outputs outs(info.Env());
    auto dx = outs.add(plainDesc({N, K}, dt::f32));
    float* d = static_cast<float*>(dx.s->data());
    const double scale = dloss / N, off = s / K;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) {
        const double target = (k == y[n] ? 1 - s : 0) + off;
        d[n * K + k] = static_cast<float>(scale * (p[n * K + k] - target));
      }
    outs.commit();
    return dx.obj;
  });
}

}  // namespace

void exportLoss(Napi::Env env, Napi::Object exports) {
  exports.Set("softmaxCrossEntropy", Napi::Function::New(env, SoftmaxCrossEntropy, "softmaxCrossEntropy"));
  exports.Set("softmaxCrossEntropyBackward",
              Napi::Function::New(env, SoftmaxCrossEntropyBackward, "softmaxCrossEntropyBackward"));
}

}  // namespace rn
