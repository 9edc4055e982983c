// bare_net: the yardstick for resnet-ts' whole-network speed. The same networks and the same
// work as src/bench/model_bench.ts (ResNet-50 BN-folded inference; one full ResNet-18 /
// ResNet-20 training step: forward, softmax cross-entropy, backward, SGD with momentum 0.9
// and weight decay 1e-4), written the way a hand-made oneDNN 2.6 (v2 API) program would
// write them: format_tag::any for every conv's src/weights/dst, primitives and buffers made
// once, fused post-ops (ReLU, residual sum), batch norm with fused ReLU, library-managed
// scratchpad, reorders only where two primitives disagree on a layout (counted, listed with
// --verbose), FTZ/DAZ set in every OpenMP thread, Winograd for f32 3x3 layers where oneDNN
// has it (as ours; RESNET_WINOGRAD=0 turns it off on both sides). Random data, nothing
// hard-coded.
// Standalone: no Node, no addon code. Built by bench/bare/build.sh into build/bare_net;
// driven by bench/net.ts (npm run bench:net), which alternates it with ours in one run.
//   bare_net --case resnet50_infer|resnet18_train|resnet20_train --batch N
//            --precision fp32|bf16 [--warmup W] [--iters K] [--json] [--verbose]
//   bare_net --probe            -> {"isa": ..., "bf16": true|false, "bf16_impl": ..., "winograd": true|false}
// bf16 is Intel's mixed-precision recipe: conv/BN/pool/eltwise/binary activations bf16, fp32
// master weights reordered to bf16 each step (training) or once (inference), conv backward
// weights writing fp32 diff weights, BN statistics, logits, loss and SGD fp32. The classifier
// (inner product) and softmax stay fp32 (a [N, C] reorder at the pooled edge).
#include <dnnl.hpp>
#include <omp.h>
#include <pmmintrin.h>
#include <xmmintrin.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

using namespace dnnl;
using dt = memory::data_type;
using tag = memory::format_tag;
using dims = memory::dims;

namespace {

struct Fail : std::runtime_error {
  using std::runtime_error::runtime_error;
};

bool gVerbose = false;

engine& eng() {
  static engine e(engine::kind::cpu, 0);
  return e;
}
stream& strm() {
  static stream s(eng());
  return s;
}

// ---------------------------------------------------------------------------------------
// Random numbers (fixed seeds) and bf16 helpers.

struct Rng {
  std::mt19937 g;
  explicit Rng(uint32_t seed) : g(seed) {}
  float normal() { return std::normal_distribution<float>(0.f, 1.f)(g); }
  float uniform(float a, float b) { return std::uniform_real_distribution<float>(a, b)(g); }
};

inline float bf2f(uint16_t v) {
  uint32_t u = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint16_t f2bf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// ---------------------------------------------------------------------------------------
// The network as a list of steps, executed in order every iteration.

struct Step {
  std::string name;
  bool isPrim = false;
  primitive prim;
  std::unordered_map<int, memory> args;
  std::function<void()> fn;
};

struct Net {
  std::vector<Step> steps;
  std::vector<std::pair<std::string, std::string>> impls;  // (step name, impl_info_str)
  std::vector<std::string> hotReorders;
  std::vector<std::string> refImpls;

  void note(const std::string& name, const std::string& impl) {
    impls.emplace_back(name, impl);
    if (impl.rfind("ref", 0) == 0) refImpls.push_back(name + " (" + impl + ")");
  }
  void add(const std::string& name, const primitive& p, std::unordered_map<int, memory> args,
           const std::string& impl) {
    Step s;
    s.name = name;
    s.isPrim = true;
    s.prim = p;
    s.args = std::move(args);
    steps.push_back(std::move(s));
    note(name, impl);
  }
  void addFn(const std::string& name, std::function<void()> fn) {
    Step s;
    s.name = name;
    s.fn = std::move(fn);
    steps.push_back(std::move(s));
  }
  std::vector<double> stepMs;  // accumulated per step when profiling
  void run(bool profile = false) {
    if (profile && stepMs.size() != steps.size()) stepMs.assign(steps.size(), 0.0);
    for (size_t i = 0; i < steps.size(); ++i) {
      Step& s = steps[i];
      const auto t0 = std::chrono::steady_clock::now();
      if (s.isPrim) {
        s.prim.execute(strm(), s.args);
      } else {
        strm().wait();
        s.fn();
      }
      if (profile) {
        strm().wait();
        stepMs[i] += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      }
    }
    strm().wait();
  }
};

memory mk(const memory::desc& md) { return memory(md, eng()); }

memory zeros(const memory::desc& md) {
  memory m = mk(md);
  std::memset(m.get_data_handle(), 0, md.get_size());
  return m;
}

// Setup-time copy of a plain f32 host array (dims d, layout t) into a new memory of `want`.
memory fromHost(std::vector<float>& host, const dims& d, tag t, const memory::desc& want) {
  memory plain(memory::desc(d, dt::f32, t), eng(), host.data());
  memory out = zeros(want);
  reorder(plain, out).execute(strm(), plain, out);
  strm().wait();
  return out;
}

std::vector<float> randn(size_t n, float stddev, Rng& r) {
  std::vector<float> v(n);
  for (auto& x : v) x = r.normal() * stddev;
  return v;
}

size_t numel(const dims& d) {
  size_t n = 1;
  for (auto v : d) n *= static_cast<size_t>(v);
  return n;
}

// A hot-path layout change: `src` as `want`, through a reorder step when they differ.
memory to(Net& net, const memory& src, const memory::desc& want, const std::string& name) {
  if (src.get_desc() == want) return src;
  memory dst = zeros(want);
  reorder::primitive_desc rpd(src, dst);
  net.add("reorder " + name, reorder(rpd), {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}}, rpd.impl_info_str());
  net.hotReorders.push_back(name);
  return dst;
}

// ---------------------------------------------------------------------------------------
// Parameters: fp32 master weights, gradients and momentum in one layout; SGD over them.

struct Param {
  std::string name;
  memory w, g, v;
  size_t n;
};

struct Model {
  Net net;
  std::vector<Param> params;
  dt act = dt::f32;  // activation data type
  bool winograd = false;
  Rng rng{0};
  float loss = NAN;
  float lr = 0.01f, momentum = 0.9f, wd = 1e-4f;

  int addParam(const std::string& name, const memory::desc& md, std::vector<float>& host, const dims& d, tag t) {
    Param p;
    p.name = name;
    p.w = fromHost(host, d, t, md);
    p.g = zeros(md);
    p.v = zeros(md);
    p.n = md.get_size() / sizeof(float);
    params.push_back(p);
    return static_cast<int>(params.size()) - 1;
  }
};

void sgdStep(Model& m) {
  const float lr = m.lr, mom = m.momentum, wd = m.wd;
  for (auto& p : m.params) {
    float* w = static_cast<float*>(p.w.get_data_handle());
    const float* g = static_cast<const float*>(p.g.get_data_handle());
    float* v = static_cast<float*>(p.v.get_data_handle());
    const long n = static_cast<long>(p.n);
#pragma omp parallel for schedule(static) if (n > 8192)
    for (long i = 0; i < n; ++i) {
      const float d = g[i] + wd * w[i];
      v[i] = mom * v[i] + d;
      w[i] -= lr * v[i];
    }
  }
}

// Weights of a primitive as `want`: the master itself, or a per-step reorder of it (bf16 or
// another layout), placed before the primitive that reads it.
memory weightsAs(Model& m, int param, const memory::desc& want, const std::string& name) {
  memory& master = m.params[param].w;
  if (master.get_desc() == want) return master;
  memory w = zeros(want);
  reorder::primitive_desc rpd(master, w);
  m.net.add("weights " + name, reorder(rpd), {{DNNL_ARG_FROM, master}, {DNNL_ARG_TO, w}}, rpd.impl_info_str());
  return w;
}

memory::desc anyMd(const dims& d, dt t) { return memory::desc(d, t, tag::any); }

dims dimsOf(const memory& m) { return m.get_desc().dims(); }

// He normal (fan_out), torchvision's conv init; plain oihw.
std::vector<float> heConv(Rng& r, int oc, int ic, int k) {
  return randn(static_cast<size_t>(oc) * ic * k * k, std::sqrt(2.f / static_cast<float>(oc * k * k)), r);
}

// ---------------------------------------------------------------------------------------
// Training layers.

struct ConvL {
  std::string name;
  convolution_forward::primitive_desc fpd;
  convolution_backward_data::primitive_desc bdpd;
  convolution_backward_weights::primitive_desc bwpd;
  memory x, y;
  int param = -1;
  bool needDx = true;
};

ConvL convFwd(Model& m, const std::string& name, const memory& x, int oc, int k, int s, int p, bool needDx) {
  ConvL c;
  c.name = name;
  c.needDx = needDx;
  const dims xd = dimsOf(x);
  const int64_t N = xd[0], C = xd[1], H = xd[2], W = xd[3];
  const int64_t OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
  const dims sd{N, C, H, W}, wd{oc, C, k, k}, dd{N, oc, OH, OW}, st{s, s}, pad{p, p};
  // Winograd for 3x3 stride-1 layers of >= 64 channels in and out, as ours (native/conv.cc)
  const algorithm alg = m.winograd && k == 3 && s == 1 && C >= 64 && oc >= 64 && OH >= 7 && OW >= 7
                            ? algorithm::convolution_winograd
                            : algorithm::convolution_direct;
  convolution_forward::desc fd(prop_kind::forward_training, alg, anyMd(sd, m.act), anyMd(wd, m.act),
                               anyMd(dd, m.act), st, pad, pad);
  c.fpd = convolution_forward::primitive_desc(fd, eng());
  convolution_backward_weights::desc bwd(alg, anyMd(sd, m.act), anyMd(wd, dt::f32), anyMd(dd, m.act), st, pad, pad);
  c.bwpd = convolution_backward_weights::primitive_desc(bwd, eng(), c.fpd);
  if (needDx) {
    convolution_backward_data::desc bdd(alg, anyMd(sd, m.act), anyMd(wd, m.act), anyMd(dd, m.act), st, pad, pad);
    c.bdpd = convolution_backward_data::primitive_desc(bdd, eng(), c.fpd);
  }
  auto host = heConv(m.rng, oc, static_cast<int>(C), k);
  c.param = m.addParam(name + ".weight", c.bwpd.diff_weights_desc(), host, wd, tag::oihw);
  memory w = weightsAs(m, c.param, c.fpd.weights_desc(), name);
  c.x = to(m.net, x, c.fpd.src_desc(), name + " src");
  c.y = zeros(c.fpd.dst_desc());
  m.net.add(name + " fwd", convolution_forward(c.fpd),
            {{DNNL_ARG_SRC, c.x}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, c.y}}, c.fpd.impl_info_str());
  return c;
}

// Backward weights (always) and backward data (when needed); returns d(src) or an empty memory.
memory convBwd(Model& m, ConvL& c, const memory& dy) {
  memory src = to(m.net, c.x, c.bwpd.src_desc(), c.name + " bwd-weights src");
  memory dyw = to(m.net, dy, c.bwpd.diff_dst_desc(), c.name + " bwd-weights diff_dst");
  m.net.add(c.name + " bwd weights", convolution_backward_weights(c.bwpd),
            {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, dyw}, {DNNL_ARG_DIFF_WEIGHTS, m.params[c.param].g}},
            c.bwpd.impl_info_str());
  if (!c.needDx) return memory();
  memory w = weightsAs(m, c.param, c.bdpd.weights_desc(), c.name + " (bwd data)");
  memory dyd = to(m.net, dy, c.bdpd.diff_dst_desc(), c.name + " bwd-data diff_dst");
  memory dx = zeros(c.bdpd.diff_src_desc());
  m.net.add(c.name + " bwd data", convolution_backward_data(c.bdpd),
            {{DNNL_ARG_DIFF_DST, dyd}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_SRC, dx}}, c.bdpd.impl_info_str());
  return dx;
}

struct BNL {
  std::string name;
  batch_normalization_forward::primitive_desc fpd;
  batch_normalization_backward::primitive_desc bpd;
  memory x, y, mean, var, ws;
  int param = -1;
  bool relu = false;
};

constexpr float kEps = 1e-5f;

BNL bnFwd(Model& m, const std::string& name, const memory& x, bool relu) {
  BNL b;
  b.name = name;
  b.relu = relu;
  b.x = x;
  const memory::desc md = x.get_desc();
  const int64_t C = md.dims()[1];
  auto flags = normalization_flags::use_scale_shift;
  if (relu) flags = flags | normalization_flags::fuse_norm_relu;
  batch_normalization_forward::desc fd(prop_kind::forward_training, md, kEps, flags);
  b.fpd = batch_normalization_forward::primitive_desc(fd, eng());
  batch_normalization_backward::desc bd(prop_kind::backward, md, md, kEps, flags);
  b.bpd = batch_normalization_backward::primitive_desc(bd, eng(), b.fpd);
  std::vector<float> host(2 * C);
  for (int64_t i = 0; i < C; ++i) host[i] = 1.f, host[C + i] = 0.f;  // gamma 1, beta 0
  b.param = m.addParam(name + ".scale_shift", b.fpd.weights_desc(), host, {2, C}, tag::nc);
  b.y = zeros(b.fpd.dst_desc());
  b.mean = zeros(b.fpd.mean_desc());
  b.var = zeros(b.fpd.variance_desc());
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, x},
                                       {DNNL_ARG_DST, b.y},
                                       {DNNL_ARG_SCALE_SHIFT, m.params[b.param].w},
                                       {DNNL_ARG_MEAN, b.mean},
                                       {DNNL_ARG_VARIANCE, b.var}};
  if (relu) {
    b.ws = zeros(b.fpd.workspace_desc());
    args[DNNL_ARG_WORKSPACE] = b.ws;
  }
  m.net.add(name + " fwd", batch_normalization_forward(b.fpd), args, b.fpd.impl_info_str());
  // Running statistics, as PyTorch and ours in training mode (momentum 0.1, unbiased var).
  const dims d = md.dims();
  const float cnt = static_cast<float>(d[0] * d[2] * d[3]);
  memory mean = b.mean, var = b.var;
  auto rm = std::make_shared<std::vector<float>>(C, 0.f), rv = std::make_shared<std::vector<float>>(C, 1.f);
  m.net.addFn(name + " running stats", [mean, var, rm, rv, C, cnt]() {
    const float* mu = static_cast<const float*>(mean.get_data_handle());
    const float* vr = static_cast<const float*>(var.get_data_handle());
    const float corr = cnt > 1 ? cnt / (cnt - 1) : 1.f;
    for (int64_t i = 0; i < C; ++i) {
      (*rm)[i] = 0.9f * (*rm)[i] + 0.1f * mu[i];
      (*rv)[i] = 0.9f * (*rv)[i] + 0.1f * vr[i] * corr;
    }
  });
  return b;
}

memory bnBwd(Model& m, BNL& b, const memory& dy) {
  memory d = to(m.net, dy, b.bpd.diff_dst_desc(), b.name + " diff_dst");
  memory dx = zeros(b.bpd.diff_src_desc());
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, b.x},
                                       {DNNL_ARG_MEAN, b.mean},
                                       {DNNL_ARG_VARIANCE, b.var},
                                       {DNNL_ARG_DIFF_DST, d},
                                       {DNNL_ARG_SCALE_SHIFT, m.params[b.param].w},
                                       {DNNL_ARG_DIFF_SRC, dx},
                                       {DNNL_ARG_DIFF_SCALE_SHIFT, m.params[b.param].g}};
  if (b.relu) args[DNNL_ARG_WORKSPACE] = b.ws;
  m.net.add(b.name + " bwd", batch_normalization_backward(b.bpd), args, b.bpd.impl_info_str());
  return dx;
}

// dst = a + b (in place when dst is a), optionally followed by ReLU.
memory addFwd(Model& m, const std::string& name, const memory& a, const memory& bIn, bool relu, bool inPlace) {
  memory b = to(m.net, bIn, a.get_desc(), name + " src1");
  binary::desc d(algorithm::binary_add, a.get_desc(), b.get_desc(), a.get_desc());
  primitive_attr attr;
  if (relu) {
    post_ops po;
    po.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f);
    attr.set_post_ops(po);
  }
  binary::primitive_desc pd(d, attr, eng());
  memory y = inPlace ? a : zeros(pd.dst_desc());
  m.net.add(name, binary(pd), {{DNNL_ARG_SRC_0, a}, {DNNL_ARG_SRC_1, b}, {DNNL_ARG_DST, y}}, pd.impl_info_str());
  return y;
}

memory reluBwd(Model& m, const std::string& name, const memory& y, const memory& dyIn) {
  const memory::desc md = y.get_desc();
  eltwise_forward::desc fd(prop_kind::forward_training, algorithm::eltwise_relu_use_dst_for_bwd, md, 0.f, 0.f);
  eltwise_forward::primitive_desc fpd(fd, eng());
  eltwise_backward::desc bd(algorithm::eltwise_relu_use_dst_for_bwd, md, md, 0.f, 0.f);
  eltwise_backward::primitive_desc bpd(bd, eng(), fpd);
  memory dy = to(m.net, dyIn, bpd.diff_dst_desc(), name + " diff_dst");
  memory dx = zeros(bpd.diff_src_desc());
  m.net.add(name, eltwise_backward(bpd), {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DST, y}, {DNNL_ARG_DIFF_SRC, dx}},
            bpd.impl_info_str());
  return dx;
}

// ---------------------------------------------------------------------------------------
// Option A shortcut (He et al. 2015): y = pad-channels(x[:, :, ::s, ::s]), the new channels
// split before and after; its backward adds the matching slice of dy into dx. Plain loops
// over the activation layouts oneDNN picks (nchw, nhwc, nChw8c, nChw16c).

struct Lay {
  int kind = 0;  // 0 nchw, 1 nhwc, 2 nChwXc
  int64_t N, C, H, W, blk = 1, Cp;
  tag t;
};

Lay layoutOf(const memory::desc& md) {
  const dims d = md.dims();
  Lay L;
  L.N = d[0], L.C = d[1], L.H = d[2], L.W = d[3], L.Cp = d[1];
  // blk 0: nchw, 1: nhwc, 8/16: nChw8c/nChw16c.
  const std::pair<tag, int> cands[] = {{tag::nchw, 0}, {tag::nhwc, 1}, {tag::nChw16c, 16}, {tag::nChw8c, 8}};
  for (auto [t, b] : cands) {
    if (md == memory::desc(d, md.data_type(), t)) {
      L.t = t;
      L.kind = b < 8 ? b : 2;
      if (b >= 8) {
        L.blk = b;
        L.Cp = (L.C + b - 1) / b * b;
      }
      return L;
    }
  }
  throw Fail("option A shortcut: activation layout is none of nchw/nhwc/nChw8c/nChw16c");
}

inline int64_t off(const Lay& L, int64_t n, int64_t c, int64_t h, int64_t w) {
  switch (L.kind) {
    case 0: return ((n * L.C + c) * L.H + h) * L.W + w;
    case 1: return ((n * L.H + h) * L.W + w) * L.C + c;
    default: return (((n * (L.Cp / L.blk) + c / L.blk) * L.H + h) * L.W + w) * L.blk + c % L.blk;
  }
}

inline int64_t wStride(const Lay& L) { return L.kind == 0 ? 1 : L.kind == 1 ? L.C : L.blk; }

// Only the data channels are written: the zero channels of y were zeroed when it was made
// and nothing else writes them.
template <typename T>
void optAForward(const Lay& X, const T* x, const Lay& Y, T* y, int64_t before, int64_t s) {
  const int64_t xs = wStride(X) * s, ys = wStride(Y);
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < Y.N; ++n)
    for (int64_t c = 0; c < X.C; ++c)
      for (int64_t h = 0; h < Y.H; ++h) {
        const T* xr = x + off(X, n, c, h * s, 0);
        T* yr = y + off(Y, n, c + before, h, 0);
        for (int64_t w = 0; w < Y.W; ++w) yr[w * ys] = xr[w * xs];
      }
}

template <typename T>
void optABackward(const Lay& DX, T* dx, const Lay& DY, const T* dy, int64_t before, int64_t s) {
  const int64_t xs = wStride(DX) * s, ys = wStride(DY);
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < DX.N; ++n)
    for (int64_t c = 0; c < DX.C; ++c)
      for (int64_t h = 0; h < DY.H; ++h) {
        T* xr = dx + off(DX, n, c, h * s, 0);
        const T* yr = dy + off(DY, n, c + before, h, 0);
        for (int64_t w = 0; w < DY.W; ++w) {
          if constexpr (sizeof(T) == 4) {
            xr[w * xs] += yr[w * ys];
          } else {
            xr[w * xs] = f2bf(bf2f(xr[w * xs]) + bf2f(yr[w * ys]));
          }
        }
      }
}

memory optAFwd(Model& m, const std::string& name, const memory& x, int64_t outC, int64_t s) {
  const Lay X = layoutOf(x.get_desc());
  const dims d = dimsOf(x);
  const int64_t before = (outC - d[1]) / 2;
  memory y = zeros(memory::desc({d[0], outC, (d[2] - 1) / s + 1, (d[3] - 1) / s + 1}, x.get_desc().data_type(), X.t));
  const Lay Y = layoutOf(y.get_desc());
  const bool bf = x.get_desc().data_type() == dt::bf16;
  m.net.addFn(name, [=]() {
    if (bf)
      optAForward(X, static_cast<const uint16_t*>(x.get_data_handle()), Y, static_cast<uint16_t*>(y.get_data_handle()),
                  before, s);
    else
      optAForward(X, static_cast<const float*>(x.get_data_handle()), Y, static_cast<float*>(y.get_data_handle()),
                  before, s);
  });
  return y;
}

void optABwdAccumulate(Model& m, const std::string& name, const memory& dx, const memory& dy, int64_t s) {
  const Lay DX = layoutOf(dx.get_desc()), DY = layoutOf(dy.get_desc());
  const int64_t before = (DY.C - DX.C) / 2;
  const bool bf = dx.get_desc().data_type() == dt::bf16;
  if (dy.get_desc().data_type() != dx.get_desc().data_type()) throw Fail("option A backward: mixed data types");
  m.net.addFn(name, [=]() {
    if (bf)
      optABackward(DX, static_cast<uint16_t*>(dx.get_data_handle()), DY,
                   static_cast<const uint16_t*>(dy.get_data_handle()), before, s);
    else
      optABackward(DX, static_cast<float*>(dx.get_data_handle()), DY, static_cast<const float*>(dy.get_data_handle()),
                   before, s);
  });
}

// ---------------------------------------------------------------------------------------
// Training networks: ResNet-18 (torchvision, option B) and ResNet-20 (CIFAR, option A).

struct BlockT {
  std::string name;
  ConvL c1, c2, dsc;
  BNL b1, b2, dsb;
  int kind = 0;  // 0 identity, 1 projection (option B), 2 option A
  int64_t stride = 1;
  memory x, y;
};

BlockT basicFwd(Model& m, const std::string& name, const memory& x, int planes, int stride, bool optionA) {
  BlockT b;
  b.name = name;
  b.x = x;
  b.stride = stride;
  const int64_t inC = dimsOf(x)[1];
  b.c1 = convFwd(m, name + ".conv1", x, planes, 3, stride, 1, true);
  b.b1 = bnFwd(m, name + ".bn1", b.c1.y, true);
  b.c2 = convFwd(m, name + ".conv2", b.b1.y, planes, 3, 1, 1, true);
  b.b2 = bnFwd(m, name + ".bn2", b.c2.y, false);
  memory sc = x;
  if (stride != 1 || inC != planes) {
    if (optionA) {
      b.kind = 2;
      sc = optAFwd(m, name + ".shortcutA", x, planes, stride);
    } else {
      b.kind = 1;
      b.dsc = convFwd(m, name + ".downsample.0", x, planes, 1, stride, 0, true);
      b.dsb = bnFwd(m, name + ".downsample.1", b.dsc.y, false);
      sc = b.dsb.y;
    }
  }
  b.y = addFwd(m, name + " add+relu", b.b2.y, sc, true, false);
  return b;
}

memory basicBwd(Model& m, BlockT& b, const memory& dy) {
  memory dz = reluBwd(m, b.name + " relu bwd", b.y, dy);
  memory d = bnBwd(m, b.b2, dz);
  d = convBwd(m, b.c2, d);
  d = bnBwd(m, b.b1, d);
  memory dx = convBwd(m, b.c1, d);
  if (b.kind == 0) {
    dx = addFwd(m, b.name + " grad fork add", dx, dz, false, true);
  } else if (b.kind == 1) {
    memory ds = bnBwd(m, b.dsb, dz);
    ds = convBwd(m, b.dsc, ds);
    dx = addFwd(m, b.name + " grad fork add", dx, ds, false, true);
  } else {
    optABwdAccumulate(m, b.name + " shortcutA bwd (accumulate)", dx, dz, b.stride);
  }
  return dx;
}

struct Head {
  pooling_forward::primitive_desc pfpd;
  pooling_backward::primitive_desc pbpd;
  inner_product_forward::primitive_desc ifpd;
  inner_product_backward_data::primitive_desc ibdpd;
  inner_product_backward_weights::primitive_desc ibwpd;
  memory feat, pooled, ipSrc, logits, prob, dlogits;
  int wParam = -1, bParam = -1;
};

Head headFwd(Model& m, const memory& feat, int classes, const std::vector<int>& labels) {
  Head h;
  h.feat = feat;
  const dims d = dimsOf(feat);
  const int64_t N = d[0], C = d[1];
  pooling_forward::desc pd(prop_kind::forward_training, algorithm::pooling_avg_exclude_padding, feat.get_desc(),
                           anyMd({N, C, 1, 1}, m.act), {1, 1}, {d[2], d[3]}, {0, 0}, {0, 0});
  h.pfpd = pooling_forward::primitive_desc(pd, eng());
  pooling_backward::desc pbd(algorithm::pooling_avg_exclude_padding, feat.get_desc(), h.pfpd.dst_desc(), {1, 1},
                             {d[2], d[3]}, {0, 0}, {0, 0});
  h.pbpd = pooling_backward::primitive_desc(pbd, eng(), h.pfpd);
  h.pooled = zeros(h.pfpd.dst_desc());
  m.net.add("avgpool fwd", pooling_forward(h.pfpd), {{DNNL_ARG_SRC, feat}, {DNNL_ARG_DST, h.pooled}},
            h.pfpd.impl_info_str());

  const dims sd{N, C, 1, 1}, wd{classes, C, 1, 1}, bd{classes}, dd{N, classes};
  inner_product_forward::desc ifd(prop_kind::forward_training, anyMd(sd, dt::f32), anyMd(wd, dt::f32),
                                  anyMd(bd, dt::f32), memory::desc(dd, dt::f32, tag::nc));
  h.ifpd = inner_product_forward::primitive_desc(ifd, eng());
  inner_product_backward_data::desc ibd(anyMd(sd, dt::f32), anyMd(wd, dt::f32), memory::desc(dd, dt::f32, tag::nc));
  h.ibdpd = inner_product_backward_data::primitive_desc(ibd, eng(), h.ifpd);
  inner_product_backward_weights::desc ibw(anyMd(sd, dt::f32), anyMd(wd, dt::f32), anyMd(bd, dt::f32),
                                           memory::desc(dd, dt::f32, tag::nc));
  h.ibwpd = inner_product_backward_weights::primitive_desc(ibw, eng(), h.ifpd);
  // PyTorch's Linear init: U(-1/sqrt(C), 1/sqrt(C)) for weight and bias.
  const float bound = 1.f / std::sqrt(static_cast<float>(C));
  std::vector<float> wh(static_cast<size_t>(classes) * C), bh(classes);
  for (auto& v : wh) v = m.rng.uniform(-bound, bound);
  for (auto& v : bh) v = m.rng.uniform(-bound, bound);
  h.wParam = m.addParam("fc.weight", h.ibwpd.diff_weights_desc(), wh, wd, tag::oihw);
  h.bParam = m.addParam("fc.bias", h.ibwpd.diff_bias_desc(), bh, bd, tag::x);
  memory w = weightsAs(m, h.wParam, h.ifpd.weights_desc(), "fc");
  memory b = to(m.net, m.params[h.bParam].w, h.ifpd.bias_desc(), "fc bias");
  h.ipSrc = to(m.net, h.pooled, h.ifpd.src_desc(), "pooled -> fc src");
  h.logits = zeros(h.ifpd.dst_desc());
  m.net.add("fc fwd", inner_product_forward(h.ifpd),
            {{DNNL_ARG_SRC, h.ipSrc}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_BIAS, b}, {DNNL_ARG_DST, h.logits}},
            h.ifpd.impl_info_str());

  softmax_forward::desc sd2(prop_kind::forward_training, h.logits.get_desc(), 1);
  softmax_forward::primitive_desc spd(sd2, eng());
  h.prob = zeros(spd.dst_desc());
  m.net.add("softmax fwd", softmax_forward(spd), {{DNNL_ARG_SRC, h.logits}, {DNNL_ARG_DST, h.prob}},
            spd.impl_info_str());
  h.dlogits = zeros(h.logits.get_desc());
  memory prob = h.prob, dl = h.dlogits;
  float* lossOut = &m.loss;
  m.net.addFn("cross-entropy loss + dlogits", [prob, dl, labels, N, classes, lossOut]() {
    const float* p = static_cast<const float*>(prob.get_data_handle());
    float* g = static_cast<float*>(dl.get_data_handle());
    double loss = 0;
    const float inv = 1.f / static_cast<float>(N);
    for (int64_t n = 0; n < N; ++n) {
      const float* pn = p + n * classes;
      float* gn = g + n * classes;
      const int y = labels[n];
      loss -= std::log(std::max(pn[y], 1e-30f));
      for (int k = 0; k < classes; ++k) gn[k] = pn[k] * inv;
      gn[y] -= inv;
    }
    *lossOut = static_cast<float>(loss / static_cast<double>(N));
  });
  return h;
}

memory headBwd(Model& m, Head& h) {
  m.net.add("fc bwd weights", inner_product_backward_weights(h.ibwpd),
            {{DNNL_ARG_SRC, to(m.net, h.ipSrc, h.ibwpd.src_desc(), "fc bwd-weights src")},
             {DNNL_ARG_DIFF_DST, h.dlogits},
             {DNNL_ARG_DIFF_WEIGHTS, m.params[h.wParam].g},
             {DNNL_ARG_DIFF_BIAS, m.params[h.bParam].g}},
            h.ibwpd.impl_info_str());
  memory w = weightsAs(m, h.wParam, h.ibdpd.weights_desc(), "fc (bwd data)");
  memory dsrc = zeros(h.ibdpd.diff_src_desc());
  m.net.add("fc bwd data", inner_product_backward_data(h.ibdpd),
            {{DNNL_ARG_DIFF_DST, h.dlogits}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_SRC, dsrc}},
            h.ibdpd.impl_info_str());
  memory dp = to(m.net, dsrc, h.pbpd.diff_dst_desc(), "fc diff_src -> pool diff_dst");
  memory dfeat = zeros(h.pbpd.diff_src_desc());
  m.net.add("avgpool bwd", pooling_backward(h.pbpd), {{DNNL_ARG_DIFF_DST, dp}, {DNNL_ARG_DIFF_SRC, dfeat}},
            h.pbpd.impl_info_str());
  return dfeat;
}

void buildTrain(Model& m, const std::string& arch, int64_t N) {
  const bool r18 = arch == "resnet18";
  const int inC = r18 ? 3 : 1, HW = r18 ? 224 : 28, classes = r18 ? 1000 : 10;
  const dims xd{N, inC, HW, HW};
  // Input: random normal, placed once in the stem conv's chosen layout (the edge).
  auto xh = randn(numel(xd), 1.f, m.rng);
  std::vector<int> labels(N);
  for (int64_t i = 0; i < N; ++i) labels[i] = static_cast<int>(i % classes);
  // The stem conv's pd decides the input layout: build a throwaway pd to learn it.
  const int k0 = r18 ? 7 : 3, s0 = r18 ? 2 : 1, p0 = r18 ? 3 : 1, c0 = r18 ? 64 : 16;
  const int64_t OH0 = (HW + 2 * p0 - k0) / s0 + 1;
  convolution_forward::desc probe(prop_kind::forward_training, algorithm::convolution_direct, anyMd(xd, m.act),
                                  anyMd({c0, inC, k0, k0}, m.act), anyMd({N, c0, OH0, OH0}, m.act), {s0, s0},
                                  {p0, p0}, {p0, p0});
  memory x = fromHost(xh, xd, tag::nchw, convolution_forward::primitive_desc(probe, eng()).src_desc());

  ConvL stem = convFwd(m, "conv1", x, c0, k0, s0, p0, false);
  BNL bn1 = bnFwd(m, "bn1", stem.y, true);
  memory h = bn1.y;
  pooling_forward::primitive_desc mpF;
  pooling_backward::primitive_desc mpB;
  memory mpWs;
  if (r18) {
    const dims d = dimsOf(h);
    const int64_t OH = (d[2] + 2 - 3) / 2 + 1;
    pooling_forward::desc pd(prop_kind::forward_training, algorithm::pooling_max, h.get_desc(),
                             anyMd({N, d[1], OH, OH}, m.act), {2, 2}, {3, 3}, {1, 1}, {1, 1});
    mpF = pooling_forward::primitive_desc(pd, eng());
    pooling_backward::desc bd(algorithm::pooling_max, h.get_desc(), mpF.dst_desc(), {2, 2}, {3, 3}, {1, 1}, {1, 1});
    mpB = pooling_backward::primitive_desc(bd, eng(), mpF);
    memory y = zeros(mpF.dst_desc());
    mpWs = zeros(mpF.workspace_desc());
    m.net.add("maxpool fwd", pooling_forward(mpF), {{DNNL_ARG_SRC, h}, {DNNL_ARG_DST, y}, {DNNL_ARG_WORKSPACE, mpWs}},
              mpF.impl_info_str());
    h = y;
  }
  std::vector<BlockT> blocks;
  const std::vector<int> layers = r18 ? std::vector<int>{2, 2, 2, 2} : std::vector<int>{3, 3, 3};
  for (size_t s = 0; s < layers.size(); ++s) {
    const int planes = c0 << s;
    for (int i = 0; i < layers[s]; ++i) {
      const int stride = (s > 0 && i == 0) ? 2 : 1;
      blocks.push_back(basicFwd(m, "layer" + std::to_string(s + 1) + "." + std::to_string(i), h, planes, stride, !r18));
      h = blocks.back().y;
    }
  }
  Head head = headFwd(m, h, classes, labels);
  // Backward.
  memory d = headBwd(m, head);
  for (size_t i = blocks.size(); i-- > 0;) d = basicBwd(m, blocks[i], d);
  if (r18) {
    memory dd = to(m.net, d, mpB.diff_dst_desc(), "maxpool diff_dst");
    memory dx = zeros(mpB.diff_src_desc());
    m.net.add("maxpool bwd", pooling_backward(mpB),
              {{DNNL_ARG_DIFF_DST, dd}, {DNNL_ARG_WORKSPACE, mpWs}, {DNNL_ARG_DIFF_SRC, dx}}, mpB.impl_info_str());
    d = dx;
  }
  d = bnBwd(m, bn1, d);
  convBwd(m, stem, d);  // the input needs no gradient: backward weights only
  m.net.addFn("sgd (momentum 0.9, weight decay 1e-4)", [&m]() { sgdStep(m); });
}

// ---------------------------------------------------------------------------------------
// Inference: ResNet-50 v1.5 with BN folded into the convs, ReLU and residual sum as post-ops.

struct InferModel {
  Net net;
  dt act = dt::f32;
  bool winograd = false;
  Rng rng{0};
  std::vector<memory> keep;  // weights and biases, placed once
  memory logits;
};

// The inference pd of a k x k conv (stride s, pad p, oc outputs, f32 bias) on `sd`.
convolution_forward::primitive_desc inferConvPd(const InferModel& m, const dims& sd, int oc, int k, int s, int p,
                                                const primitive_attr& attr) {
  const int64_t OH = (sd[2] + 2 * p - k) / s + 1, OW = (sd[3] + 2 * p - k) / s + 1;
  const dims wd{oc, sd[1], k, k}, bd{oc}, dd{sd[0], oc, OH, OW};
  const auto make = [&](algorithm alg, const memory::desc& src, const memory::desc& dst) {
    convolution_forward::desc fd(prop_kind::forward_inference, alg, src, anyMd(wd, m.act), anyMd(bd, dt::f32), dst,
                                 {s, s}, {p, p}, {p, p});
    return convolution_forward::primitive_desc(fd, attr, eng());
  };
  if (!m.winograd) return make(algorithm::convolution_direct, anyMd(sd, m.act), anyMd(dd, m.act));
  // nChw16c activations everywhere, Winograd for 3x3 stride 1 with outputs of at least 7x7
  const auto act = [&](const dims& d) { return d[1] % 16 == 0 ? memory::desc(d, m.act, tag::nChw16c) : anyMd(d, m.act); };
  const bool wino = k == 3 && s == 1 && OH >= 7 && OW >= 7;
  return make(wino ? algorithm::convolution_winograd : algorithm::convolution_direct, act(sd), act(dd));
}

// Conv (+ folded BN) [+ sum into `sumDst`] [+ ReLU]; returns its dst.
memory convInfer(InferModel& m, const std::string& name, const memory& xIn, int oc, int k, int s, int p, bool relu,
                 const memory* sumDst) {
  const dims xd = dimsOf(xIn);
  const int64_t C = xd[1];
  const dims wd{oc, C, k, k}, bd{oc};
  primitive_attr attr;
  post_ops po;
  if (sumDst) po.append_sum(1.f);
  if (relu) po.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f);
  attr.set_post_ops(po);
  const convolution_forward::primitive_desc pd = inferConvPd(m, xd, oc, k, s, p, attr);
  // Weights with BN folded in: w' = w * gamma / sqrt(var + eps), b' = beta - mean * that.
  auto w = heConv(m.rng, oc, static_cast<int>(C), k);
  std::vector<float> b(oc);
  const size_t per = static_cast<size_t>(C) * k * k;
  for (int o = 0; o < oc; ++o) {
    const float gamma = 1.f + 0.1f * m.rng.uniform(-1.f, 1.f), beta = 0.1f * m.rng.uniform(-1.f, 1.f);
    const float mean = 0.1f * m.rng.uniform(-1.f, 1.f), var = 1.f + 0.1f * m.rng.uniform(0.f, 1.f);
    const float sc = gamma / std::sqrt(var + kEps);
    for (size_t i = 0; i < per; ++i) w[o * per + i] *= sc;
    b[o] = beta - mean * sc;
  }
  memory wm = fromHost(w, wd, tag::oihw, pd.weights_desc());
  memory bm = fromHost(b, bd, tag::x, pd.bias_desc());
  m.keep.push_back(wm);
  m.keep.push_back(bm);
  memory x = to(m.net, xIn, pd.src_desc(), name + " src");
  memory y;
  if (sumDst) {
    y = to(m.net, *sumDst, pd.dst_desc(), name + " sum dst");
  } else {
    y = zeros(pd.dst_desc());
  }
  m.net.add(name, convolution_forward(pd), {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_BIAS, bm}, {DNNL_ARG_DST, y}},
            pd.impl_info_str());
  return y;
}

void buildResnet50(InferModel& m, int64_t N) {
  const int classes = 1000;
  const dims xd{N, 3, 224, 224};
  auto xh = randn(numel(xd), 1.f, m.rng);
  primitive_attr pa;
  post_ops ppo;
  ppo.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f);
  pa.set_post_ops(ppo);
  memory x = fromHost(xh, xd, tag::nchw, inferConvPd(m, xd, 64, 7, 2, 3, pa).src_desc());
  m.keep.push_back(x);
  memory h = convInfer(m, "conv1+bn1+relu", x, 64, 7, 2, 3, true, nullptr);
  {
    const dims d = dimsOf(h);
    pooling_forward::desc pd(prop_kind::forward_inference, algorithm::pooling_max, h.get_desc(),
                             anyMd({N, d[1], 56, 56}, m.act), {2, 2}, {3, 3}, {1, 1}, {1, 1});
    pooling_forward::primitive_desc ppd(pd, eng());
    memory y = zeros(ppd.dst_desc());
    m.net.add("maxpool", pooling_forward(ppd), {{DNNL_ARG_SRC, h}, {DNNL_ARG_DST, y}}, ppd.impl_info_str());
    h = y;
  }
  const int layers[4] = {3, 4, 6, 3};
  for (int s = 0; s < 4; ++s) {
    const int planes = 64 << s;
    for (int i = 0; i < layers[s]; ++i) {
      const std::string n = "layer" + std::to_string(s + 1) + "." + std::to_string(i);
      const int stride = (s > 0 && i == 0) ? 2 : 1;
      memory sc = h;
      memory t = convInfer(m, n + ".conv1+relu", h, planes, 1, 1, 0, true, nullptr);
      t = convInfer(m, n + ".conv2+relu", t, planes, 3, stride, 1, true, nullptr);
      if (i == 0) sc = convInfer(m, n + ".downsample", h, planes * 4, 1, stride, 0, false, nullptr);
      h = convInfer(m, n + ".conv3+sum+relu", t, planes * 4, 1, 1, 0, true, &sc);
    }
  }
  const dims d = dimsOf(h);
  pooling_forward::desc pd(prop_kind::forward_inference, algorithm::pooling_avg_exclude_padding, h.get_desc(),
                           anyMd({N, d[1], 1, 1}, m.act), {1, 1}, {d[2], d[3]}, {0, 0}, {0, 0});
  pooling_forward::primitive_desc ppd(pd, eng());
  memory pooled = zeros(ppd.dst_desc());
  m.net.add("avgpool", pooling_forward(ppd), {{DNNL_ARG_SRC, h}, {DNNL_ARG_DST, pooled}}, ppd.impl_info_str());
  const dims sd{N, d[1], 1, 1}, wd{classes, d[1], 1, 1}, bd{classes}, dd{N, classes};
  inner_product_forward::desc ifd(prop_kind::forward_inference, anyMd(sd, dt::f32), anyMd(wd, dt::f32),
                                  anyMd(bd, dt::f32), memory::desc(dd, dt::f32, tag::nc));
  inner_product_forward::primitive_desc ipd(ifd, eng());
  const float bound = 1.f / std::sqrt(static_cast<float>(d[1]));
  std::vector<float> wh(static_cast<size_t>(classes) * d[1]), bh(classes);
  for (auto& v : wh) v = m.rng.uniform(-bound, bound);
  for (auto& v : bh) v = m.rng.uniform(-bound, bound);
  memory wm = fromHost(wh, wd, tag::oihw, ipd.weights_desc()), bm = fromHost(bh, bd, tag::x, ipd.bias_desc());
  m.keep.push_back(wm);
  m.keep.push_back(bm);
  memory src = to(m.net, pooled, ipd.src_desc(), "pooled -> fc src");
  m.logits = zeros(ipd.dst_desc());
  m.net.add("fc", inner_product_forward(ipd),
            {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_BIAS, bm}, {DNNL_ARG_DST, m.logits}},
            ipd.impl_info_str());
}

// ---------------------------------------------------------------------------------------

const char* isaName() {
  switch (get_effective_cpu_isa()) {
    case cpu_isa::avx512_core_amx: return "avx512_core_amx";
    case cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case cpu_isa::avx512_core: return "avx512_core";
    case cpu_isa::avx512_mic_4ops: return "avx512_mic_4ops";
    case cpu_isa::avx512_mic: return "avx512_mic";
    case cpu_isa::avx2_vnni: return "avx2_vnni";
    case cpu_isa::avx2: return "avx2";
    case cpu_isa::avx: return "avx";
    case cpu_isa::sse41: return "sse41";
    default: return "unknown";
  }
}

// Winograd in f32, as resnet-ts decides it (native/conv.cc): where oneDNN has it (AVX-512)
// and RESNET_WINOGRAD is not 0. Inference: 3x3 stride-1 layers run Winograd and every layer
// takes nChw16c activations (the direct inference kernels would pick nhwc, and a reorder
// would sit on each side of every Winograd layer). Training: 3x3 stride-1 layers of >= 64
// channels in and out, all three passes.
bool winogradAvailable() {
  if (const char* env = std::getenv("RESNET_WINOGRAD"); env && std::string(env) == "0") return false;
  try {
    const dims x{1, 16, 8, 8}, w{16, 16, 3, 3};
    convolution_forward::desc d(prop_kind::forward_inference, algorithm::convolution_winograd, anyMd(x, dt::f32),
                                anyMd(w, dt::f32), anyMd(x, dt::f32), {1, 1}, {1, 1}, {1, 1});
    convolution_forward::primitive_desc(d, eng());
    return true;
  } catch (const dnnl::error&) {
    return false;
  }
}

// Can this CPU run bf16 convolutions on a real (non-reference) kernel? A ResNet 3x3 layer's
// forward and backward-weights (fp32 diff weights) primitive descriptors decide.
struct Bf16Probe {
  bool ok = false;
  std::string impl, why;
};

Bf16Probe probeBf16() {
  Bf16Probe r;
  const dims sd{16, 64, 56, 56}, wd{64, 64, 3, 3}, dd{16, 64, 56, 56};
  try {
    convolution_forward::desc fd(prop_kind::forward_training, algorithm::convolution_direct, anyMd(sd, dt::bf16),
                                 anyMd(wd, dt::bf16), anyMd(dd, dt::bf16), {1, 1}, {1, 1}, {1, 1});
    convolution_forward::primitive_desc fpd(fd, eng());
    r.impl = fpd.impl_info_str();
    convolution_backward_weights::desc bd(algorithm::convolution_direct, anyMd(sd, dt::bf16), anyMd(wd, dt::f32),
                                          anyMd(dd, dt::bf16), {1, 1}, {1, 1}, {1, 1});
    convolution_backward_weights::primitive_desc bpd(bd, eng(), fpd);
    const std::string bimpl = bpd.impl_info_str();
    if (r.impl.rfind("ref", 0) == 0) {
      r.why = "bf16 convolution forward is only available as " + r.impl;
    } else if (bimpl.rfind("ref", 0) == 0) {
      r.why = "bf16 convolution backward weights is only available as " + bimpl;
    } else {
      r.ok = true;
    }
  } catch (const dnnl::error& e) {
    r.impl = "none";
    r.why = std::string("no bf16 convolution on this CPU (") + e.what() + ")";
  }
  return r;
}

std::string jsonEsc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    o += c;
  }
  return o;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

void usage() {
  std::fprintf(stderr,
               "usage: bare_net --case resnet50_infer|resnet18_train|resnet20_train --batch N --precision fp32|bf16 "
               "[--warmup W] [--iters K] [--json] [--verbose] [--profile]\n       bare_net --probe\n");
}

long parseInt(const std::string& flag, const char* v) {
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (!v[0] || *end) throw Fail(flag + " needs an integer, got '" + v + "'");
  return n;
}

int runMain(int argc, char** argv) {
  std::string cs, prec = "fp32";
  long batch = -1, warmup = 2, iters = 10;
  bool json = false, probe = false, profile = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) throw Fail(a + " needs a value");
      return argv[++i];
    };
    if (a == "--case") cs = next();
    else if (a == "--batch") batch = parseInt(a, next());
    else if (a == "--precision") prec = next();
    else if (a == "--warmup") warmup = parseInt(a, next());
    else if (a == "--iters") iters = parseInt(a, next());
    else if (a == "--json") json = true;
    else if (a == "--verbose") gVerbose = true;
    else if (a == "--profile") profile = true;
    else if (a == "--probe") probe = true;
    else if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else {
      throw Fail("unknown argument '" + a + "'");
    }
  }
  if (probe) {
    const Bf16Probe p = probeBf16();
    std::printf("{\"isa\": \"%s\", \"bf16\": %s, \"bf16_impl\": \"%s\", \"winograd\": %s, \"threads\": %d, \"onednn\": \"%d.%d.%d\"}\n",
                isaName(), p.ok ? "true" : "false", jsonEsc(p.ok ? p.impl : (p.impl + " (" + p.why + ")")).c_str(),
                winogradAvailable() ? "true" : "false", omp_get_max_threads(), dnnl_version()->major, dnnl_version()->minor, dnnl_version()->patch);
    return 0;
  }
  if (cs != "resnet50_infer" && cs != "resnet18_train" && cs != "resnet20_train")
    throw Fail("--case must be resnet50_infer, resnet18_train or resnet20_train (got '" + cs + "')");
  if (prec != "fp32" && prec != "bf16") throw Fail("--precision must be fp32 or bf16 (got '" + prec + "')");
  if (batch < 1) throw Fail("--batch must be an integer >= 1");
  if (warmup < 0 || iters < 1) throw Fail("--warmup must be >= 0 and --iters >= 1");
  const dt act = prec == "bf16" ? dt::bf16 : dt::f32;
  if (act == dt::bf16) {
    const Bf16Probe p = probeBf16();
    if (!p.ok) throw Fail("bf16 unavailable on this CPU: " + p.why);
  }

  std::unique_ptr<Model> tm;
  std::unique_ptr<InferModel> im;
  Net* net;
  const auto tb = std::chrono::steady_clock::now();
  if (cs == "resnet50_infer") {
    im = std::make_unique<InferModel>();
    im->act = act;
    im->winograd = act == dt::f32 && winogradAvailable();
    buildResnet50(*im, batch);
    net = &im->net;
  } else {
    tm = std::make_unique<Model>();
    tm->act = act;
    tm->winograd = act == dt::f32 && winogradAvailable();
    buildTrain(*tm, cs == "resnet18_train" ? "resnet18" : "resnet20", batch);
    net = &tm->net;
  }
  const double buildMs = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - tb).count();
  if (gVerbose) {
    std::fprintf(stderr, "bare_net: %s batch %ld %s, isa %s, %d threads, built in %.0f ms, %zu steps\n", cs.c_str(),
                 batch, prec.c_str(), isaName(), omp_get_max_threads(), buildMs, net->steps.size());
    for (auto& [n, impl] : net->impls) std::fprintf(stderr, "  %-48s %s\n", n.c_str(), impl.c_str());
    std::fprintf(stderr, "  hot-path reorders: %zu\n", net->hotReorders.size());
    for (auto& r : net->hotReorders) std::fprintf(stderr, "    %s\n", r.c_str());
  }
  for (auto& r : net->refImpls) std::fprintf(stderr, "bare_net: warning: %s runs on a reference kernel\n", r.c_str());

  std::vector<double> ms;
  float lossFirst = NAN, lossLast = NAN;
  for (long i = 0; i < warmup + iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    net->run(profile && i >= warmup);
    const double t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (i >= warmup) ms.push_back(t);
    if (tm) {
      if (i == 0) lossFirst = tm->loss;
      lossLast = tm->loss;
    }
  }
  if (tm && !(std::isfinite(lossFirst) && std::isfinite(lossLast)))
    throw Fail("the training loss is not finite (first " + std::to_string(lossFirst) + ", last " +
               std::to_string(lossLast) + ")");
  if (im) {
    const float* l = static_cast<const float*>(im->logits.get_data_handle());
    for (long i = 0; i < batch * 1000; ++i)
      if (!std::isfinite(l[i])) throw Fail("the inference logits are not finite");
  }
  const double med = median(ms);
  if (gVerbose && tm) std::fprintf(stderr, "bare_net: loss first %.5f, last %.5f\n", lossFirst, lossLast);
  if (profile) {
    // Per-step time (synchronised after every step), the 25 largest, and the total by kind.
    std::vector<size_t> order(net->steps.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return net->stepMs[a] > net->stepMs[b]; });
    double total = 0;
    for (double t : net->stepMs) total += t;
    std::fprintf(stderr, "bare_net: profile, ms per iteration (sum of steps %.2f):\n", total / iters);
    for (size_t k = 0; k < std::min<size_t>(25, order.size()); ++k)
      std::fprintf(stderr, "  %8.3f  %s\n", net->stepMs[order[k]] / iters, net->steps[order[k]].name.c_str());
    std::map<std::string, double> byKind;
    for (size_t i = 0; i < net->steps.size(); ++i) {
      const std::string& n = net->steps[i].name;
      const size_t sp = n.find(' ');
      std::string kind = sp == std::string::npos ? n : n.substr(sp + 1);
      if (n.rfind("reorder", 0) == 0 || n.rfind("weights", 0) == 0) kind = n.substr(0, n.find(' '));
      // The layer's kind in front ("conv fwd", "bn bwd"), from its name (layer1.0.bn1, conv1).
      const std::string layer = n.substr(0, sp);
      const std::string last = layer.substr(layer.rfind('.') == std::string::npos ? 0 : layer.rfind('.') + 1);
      if (last.rfind("conv", 0) == 0) kind = "conv " + kind;
      else if (last.rfind("bn", 0) == 0) kind = "bn " + kind;
      byKind[kind] += net->stepMs[i] / iters;
    }
    for (auto& [k, t] : byKind) std::fprintf(stderr, "  by kind %8.3f  %s\n", t, k.c_str());
  }
  if (json) {
    std::map<std::string, int> implCount;
    for (auto& [n, impl] : net->impls) implCount[impl]++;
    std::string runs, impls, convImpls, refs, reorders;
    for (size_t i = 0; i < ms.size(); ++i) runs += (i ? "," : "") + std::to_string(ms[i]);
    for (auto& [impl, c] : implCount) impls += (impls.empty() ? "" : ",") + ("\"" + jsonEsc(impl) + "\":" + std::to_string(c));
    for (auto& r : net->refImpls) refs += (refs.empty() ? "\"" : ",\"") + jsonEsc(r) + "\"";
    for (auto& r : net->hotReorders) reorders += (reorders.empty() ? "\"" : ",\"") + jsonEsc(r) + "\"";
    std::printf(
        "{\"case\":\"%s\",\"batch\":%ld,\"precision\":\"%s\",\"isa\":\"%s\",\"threads\":%d,\"warmup\":%ld,\"iters\":%ld,"
        "\"runs_ms\":[%s],\"ms_per_batch\":%.4f,\"images_per_sec\":%.4f,\"loss_first\":%s,\"loss_last\":%s,"
        "\"build_ms\":%.1f,\"impls\":{%s},\"ref_impls\":[%s],\"hot_reorders\":[%s]}\n",
        cs.c_str(), batch, prec.c_str(), isaName(), omp_get_max_threads(), warmup, iters, runs.c_str(), med,
        batch * 1000.0 / med, tm ? std::to_string(lossFirst).c_str() : "null",
        tm ? std::to_string(lossLast).c_str() : "null", buildMs, impls.c_str(), refs.c_str(), reorders.c_str());
  } else {
    std::printf("%s batch %ld %s (%s, %d threads): ", cs.c_str(), batch, prec.c_str(), isaName(), omp_get_max_threads());
    for (double t : ms) std::printf("%.2f ", t);
    std::printf("ms\nmedian %.2f ms, %.2f images/s\n", med, batch * 1000.0 / med);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Denormals made ResNet-50 4-5x slower here: flush them in every OpenMP thread (oneDNN
  // runs on the same OpenMP pool).
#pragma omp parallel
  {
    _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
    _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
  }
  try {
    return runMain(argc, argv);
  } catch (const dnnl::error& e) {
    std::fprintf(stderr, "bare_net: oneDNN error: %s (status %d)\n", e.what(), static_cast<int>(e.status));
    return 1;
  } catch (const Fail& e) {
    std::fprintf(stderr, "bare_net: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bare_net: %s\n", e.what());
    return 1;
  }
}
