// The option A shortcut of He et al. 2015 (section 4.2, CIFAR-10): y = x[:, :, ::s, ::s] with
// zero channels padded, `before` of them first (the CIFAR code's F.pad), and its backward
// dx[:, :, ::s, ::s] = dy[:, before:before+C] (zeros elsewhere). Pure data movement, done in
// the activation's own layout (nchw, nhwc, nChw8c or nChw16c; f32 or bf16) as the bare
// network does; any other layout goes through plain. Before this op it ran as a 1x1
// convolution with a 0/1 selection weight: 1.4 ms of a resnet20 training step (batch 128)
// for what a copy does in a tenth of that.
#include "common.h"

namespace rn {

namespace {

struct Lay {
  int kind = -1;  // 0 nchw, 1 nhwc, 2 blocked (nChw8c / nChw16c)
  int64_t N = 0, C = 0, H = 0, W = 0, Cp = 0, blk = 1;
};

Lay layoutOf(const memory::desc& md) {
  Lay L;
  const memory::dims d = dimsOf(md);
  if (d.size() != 4) return L;
  L.N = d[0], L.C = d[1], L.H = d[2], L.W = d[3], L.Cp = d[1];
  const std::string f = formatName(md);
  if (f == "abcd") L.kind = 0;
  else if (f == "acdb") L.kind = 1;
  else if (f == "aBcd8b" || f == "aBcd16b") {
    L.kind = 2;
    L.blk = f == "aBcd8b" ? 8 : 16;
    L.Cp = (L.C + L.blk - 1) / L.blk * L.blk;
  }
  return L;
}

inline int64_t off(const Lay& L, int64_t n, int64_t c, int64_t h, int64_t w) {
  switch (L.kind) {
    case 0: return ((n * L.C + c) * L.H + h) * L.W + w;
    case 1: return ((n * L.H + h) * L.W + w) * L.C + c;
    default: return (((n * (L.Cp / L.blk) + c / L.blk) * L.H + h) * L.W + w) * L.blk + c % L.blk;
  }
}

inline int64_t wStride(const Lay& L) { return L.kind == 0 ? 1 : L.kind == 1 ? L.C : L.blk; }

// small[n, c, h*s, w*s] <-> big[n, c + before, h, w] for c < small.C: `toBig` copies from the
// (strided) small tensor into the big one (forward), else back (backward). The rest of the
// destination is zeroed first.
template <typename T>
void move(const Lay& S, T* small, const Lay& B, T* big, int64_t before, int64_t s, bool toBig, size_t dstBytes) {
  std::memset(toBig ? static_cast<void*>(big) : static_cast<void*>(small), 0, dstBytes);
  const int64_t ss = wStride(S) * s, bs = wStride(B);
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < B.N; ++n)
    for (int64_t c = 0; c < S.C; ++c)
      for (int64_t h = 0; h < B.H; ++h) {
        T* sr = small + off(S, n, c, h * s, 0);
        T* br = big + off(B, n, c + before, h, 0);
        if (toBig) for (int64_t w = 0; w < B.W; ++w) br[w * bs] = sr[w * ss];
        else for (int64_t w = 0; w < B.W; ++w) sr[w * ss] = br[w * bs];
      }
}

const std::vector<const char*> kShortcutFields = {"N", "C", "H", "W", "K", "OH", "OW", "stride", "before"};

struct Geom {
  int64_t N, C, H, W, K, OH, OW, s, before;
};

Geom geom(const std::vector<int64_t>& v) {
  Geom g{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]};
  if (g.s < 1 || g.K < g.C || g.before < 0 || g.before + g.C > g.K || g.OH != (g.H - 1) / g.s + 1 || g.OW != (g.W - 1) / g.s + 1)
    throw OpError("geometry must have stride >= 1, K >= C, 0 <= before <= K - C, OH = (H - 1) / stride + 1 (floor), OW likewise");
  return g;
}

}  // namespace

memory::desc shortcutADesc(const memory::desc& src, int64_t K, int64_t stride) {
  const memory::dims d = dimsOf(src);
  return sameLayout(layoutOf(src).kind < 0 ? plainDesc(d, src.data_type()) : src,
                    {d[0], K, (d[2] - 1) / stride + 1, (d[3] - 1) / stride + 1});
}

void shortcutAForward(const memory& x, const memory& y, int64_t before, int64_t stride) {
  const Lay X = layoutOf(x.get_desc()), Y = layoutOf(y.get_desc());
  if (X.kind < 0 || Y.kind < 0 || x.get_desc().data_type() != y.get_desc().data_type())
    throw OpError("option A shortcut: x and y must be nchw, nhwc, nChw8c or nChw16c of one data type");
  const size_t bytes = y.get_desc().get_size();
  if (x.get_desc().data_type() == dt::bf16)
    move(X, static_cast<uint16_t*>(x.get_data_handle()), Y, static_cast<uint16_t*>(y.get_data_handle()), before, stride, true, bytes);
  else
    move(X, static_cast<uint32_t*>(x.get_data_handle()), Y, static_cast<uint32_t*>(y.get_data_handle()), before, stride, true, bytes);
}

namespace {

// shortcutA(x, geometry) -> y [N, K, OH, OW] in x's layout (plain for one it does not take)
Napi::Value ShortcutA(const Napi::CallbackInfo& info) {
  return guarded(info, "shortcutA", [&]() -> Napi::Value {
    Storage* x = Storage::From(info[0], "x");
    const Geom g = geom(geometryArg(info, 1, kShortcutFields));
    if (dimsOf(x->md()) != memory::dims{g.N, g.C, g.H, g.W}) throw OpError("x is not [N, C, H, W] of the geometry");
    if (!isFloat(x->type())) throw OpError("x must be float32 (or bf16)");
    const memory::desc xmd = layoutOf(x->md()).kind < 0 ? plainDesc(dimsOf(x->md()), x->type()) : x->md();
    Outputs outs(info.Env());
    auto y = outs.add(shortcutADesc(xmd, g.K, g.s));
    shortcutAForward(x->as(xmd), y.s->mem(), g.before, g.s);
    outs.commit();
    return y.obj;
  });
}

// shortcutABackward(dy, geometry) -> dx [N, C, H, W] in dy's layout (plain for one it does not take)
Napi::Value ShortcutABackward(const Napi::CallbackInfo& info) {
  return guarded(info, "shortcutABackward", [&]() -> Napi::Value {
    Storage* dy = Storage::From(info[0], "dy");
    const Geom g = geom(geometryArg(info, 1, kShortcutFields));
    if (dimsOf(dy->md()) != memory::dims{g.N, g.K, g.OH, g.OW}) throw OpError("dy is not [N, K, OH, OW] of the geometry");
    if (!isFloat(dy->type())) throw OpError("dy must be float32 (or bf16)");
    const memory::desc dymd = layoutOf(dy->md()).kind < 0 ? plainDesc(dimsOf(dy->md()), dy->type()) : dy->md();
    Outputs outs(info.Env());
    auto dx = outs.add(sameLayout(dymd, {g.N, g.C, g.H, g.W}));
    const memory dym = dy->as(dymd);
    const Lay X = layoutOf(dx.s->md()), Y = layoutOf(dymd);
    const size_t bytes = dx.s->md().get_size();
    if (dy->type() == dt::bf16)
      move(X, static_cast<uint16_t*>(dx.s->data()), Y, static_cast<uint16_t*>(dym.get_data_handle()), g.before, g.s, false, bytes);
    else
      move(X, static_cast<uint32_t*>(dx.s->data()), Y, static_cast<uint32_t*>(dym.get_data_handle()), g.before, g.s, false, bytes);
    outs.commit();
    return dx.obj;
  });
}

}  // namespace

void exportShortcut(Napi::Env env, Napi::Object exports) {
  exports.Set("shortcutA", Napi::Function::New(env, ShortcutA, "shortcutA"));
  exports.Set("shortcutABackward", Napi::Function::New(env, ShortcutABackward, "shortcutABackward"));
}

}  // namespace rn
