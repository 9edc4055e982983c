// The batch-norm kernels' interface (batch_norm.cc builds the kernels once per instruction
// set from batch_norm_kernels.inc and picks one at run time): a channel view of the data, the
// double sums the kernels return, and a table of the four passes per element type.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include <immintrin.h>

namespace rn {

// A 4-D (or wider) f32 or bf16 layout seen as [N][Cb][S][B]: B channels contiguous, S spatial
// positions B apart, Cb channel blocks. Planar NCHW is B = 1; channels-last is Cb = 1, B = C;
// aBcd8b is B = 8. Channels past C (block padding) are carried with gamma = beta = 0.
struct ChannelView {
  int64_t N = 0, C = 0, Cb = 0, B = 0, S = 0, nStride = 0, cbStride = 0;
  int64_t base(int64_t n, int64_t cb) const { return n * nStride + cb * cbStride; }
};

// Per-channel [Cb * B] double sums.
struct Sums { std::vector<double> a, b; };

/// dx = a * g - kx * (x - mean) + c0 per padded channel; scale and shift (the forward's) tell
/// where a fused ReLU passed the gradient.
struct BnGradCoef { const float *a, *kx, *c0, *mean, *scale, *shift; };

/// A barrier for the threads of one parallel region that spins instead of sleeping. With
/// OMP_WAIT_POLICY=PASSIVE (our default, src/backend/native.ts) OpenMP's barrier puts the
/// thread that arrives first to sleep in the kernel and the last one wakes it, tens of us on a
/// 2-vCPU VM, twice in every batch-norm call (after the sums, after the coefficients): with
/// this barrier resnet20's forward calls went 200 / 135 / 97 -> 165 / 95 / 63 us through N-API
/// (oneDNN's kernels spin on a barrier of their own too). After ~2,000 pauses (another process
/// on the core) it yields instead of burning the time slice.
class SpinBarrier {
 public:
  void wait(int threads) {
    const unsigned ph = phase_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == threads) {
      arrived_.store(0, std::memory_order_relaxed);
      phase_.store(ph + 1, std::memory_order_release);
      return;
    }
    for (int k = 0; phase_.load(std::memory_order_acquire) == ph; ++k) {
      if (k < 2000) _mm_pause();
      else std::this_thread::yield();
    }
  }

 private:
  std::atomic<int> arrived_{0};
  std::atomic<unsigned> phase_{0};
};

/// What runs between a call's two passes, once, on one thread: given the sums, it fills the
/// coefficients the second pass reads.
using BnBetween = std::function<void(const Sums&)>;

/// Training batch norm's forward and backward over elements of type T (float or bf16_t), each
/// one parallel region (sums, between, map).
template <class T>
struct BnOps {
  void (*forward)(const ChannelView& v, const T* x, T* y, const float* k, const float* scale, const float* shift,
                  bool relu, const BnBetween& between);
  void (*backward)(const ChannelView& v, const T* x, const T* dy, T* dx, const BnGradCoef& k, bool relu,
                   const BnBetween& between);
};

}  // namespace rn
