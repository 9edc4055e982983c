// Detection kernels as plain OpenMP loops (oneDNN 2.6 has no RoIAlign, RoIPool or resize
// with ATen's index rules): torchvision 0.14's roi_align / roi_pool
// (torchvision/csrc/ops/cpu/roi_{align,pool}_kernel.cpp) and PyTorch 1.13's
// upsample_nearest2d / upsample_bilinear2d (aten/src/ATen/native/UpSample.h), forward and
// backward. Inputs in any layout (or bf16) are read as f32: RoIAlign's x channels-last (a
// sample's four corners are then four contiguous C-vectors, and its dx is written so), the
// rest plain NCHW; the other outputs are plain.
// Sample positions, bin edges and weights are computed in float in torch's order (a ceil or
// truncation of them is discontinuous); the judge is src/backend/reference/detect.ts.
// Every index is checked or clamped here too: a direct caller cannot make us read or write
// out of bounds. Backwards that scatter parallelise over channels, so no two threads add
// into the same element.
#include "common.h"

#include <omp.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <vector>

namespace rn {

namespace {

struct RoiGeom {
  int64_t N, C, H, W, K, OH, OW;
  float spatialScale;
  int64_t samplingRatio;
  bool aligned;
};

RoiGeom roiGeom(const Napi::CallbackInfo& info, size_t i) {
  const Napi::Object o = objArg(info, i, "geometry");
  RoiGeom g{intProp(o, "N"), intProp(o, "C"), intProp(o, "H"), intProp(o, "W"), intProp(o, "K"), intProp(o, "OH"),
            intProp(o, "OW"), 0.f, intProp(o, "samplingRatio"), o.Get("aligned").ToBoolean().Value()};
  const Napi::Value s = o.Get("spatialScale");
  if (!s.IsNumber()) throw OpError("'spatialScale' must be a number");
  const double scale = s.As<Napi::Number>().DoubleValue();
  if (!(scale > 0 && std::isfinite(scale))) throw OpError("'spatialScale' must be finite and > 0");
  g.spatialScale = static_cast<float>(scale);
  if (g.N < 0 || g.C < 0 || g.K < 0 || g.H < 1 || g.W < 1 || g.OH < 1 || g.OW < 1)
    throw OpError("geometry needs N, C, K >= 0 and H, W, OH, OW >= 1");
  return g;
}

void expectDims(Storage* s, const memory::dims& want, const char* what) {
  if (dimsOf(s->md()) != want) throw OpError(std::string("'") + what + "' has other dims than the geometry says");
  if (!isFloat(s->type())) throw OpError(std::string("'") + what + "' must be float32");
}

/// The plain f32 contents of `s` (a reordered copy if it is blocked or bf16).
const float* plainF32(Storage* s, const memory::dims& dims) {
  return static_cast<const float*>(s->as(plainDesc(dims, dt::f32)).get_data_handle());
}

/// rois [K, 5] as plain f32, each batch index in [0, N) and each coordinate finite with
/// |v * scale| <= 2^24 (the tensor layer's MAX_ROI_COORD): otherwise an OpError.
const float* checkedRois(Storage* rois, const RoiGeom& g) {
  expectDims(rois, {g.K, 5}, "rois");
  if (g.K == 0) return nullptr;
  const float* r = plainF32(rois, {g.K, 5});
  for (int64_t k = 0; k < g.K; ++k) {
    const float b = r[k * 5];
    if (!std::isfinite(b) || static_cast<int64_t>(b) < 0 || static_cast<int64_t>(b) >= g.N)
      throw OpError("rois row " + std::to_string(k) + " has a batch index outside [0, " + std::to_string(g.N) + ")");
    for (int j = 1; j < 5; ++j)
      if (!(std::fabs(static_cast<double>(r[k * 5 + j]) * g.spatialScale) <= 16777216.0))
        throw OpError("rois row " + std::to_string(k) + " has a non-finite or too large coordinate");
  }
  return r;
}

// ---- RoIAlign ---------------------------------------------------------------------------

struct RoiBox {
  int64_t batch;
  float startH, startW, binH, binW;
  int64_t gridH, gridW;
};

RoiBox alignBox(const float* r, const RoiGeom& g) {
  const float offset = g.aligned ? 0.5f : 0.f;
  const float startW = r[1] * g.spatialScale - offset, startH = r[2] * g.spatialScale - offset;
  const float endW = r[3] * g.spatialScale - offset, endH = r[4] * g.spatialScale - offset;
  float roiW = endW - startW, roiH = endH - startH;
  if (!g.aligned) {  // force malformed rois to 1x1
    roiW = std::max(roiW, 1.f);
    roiH = std::max(roiH, 1.f);
  }
  const float oh = static_cast<float>(g.OH), ow = static_cast<float>(g.OW);
  const int64_t gridH = g.samplingRatio > 0 ? g.samplingRatio : static_cast<int64_t>(std::ceil(roiH / oh));
  const int64_t gridW = g.samplingRatio > 0 ? g.samplingRatio : static_cast<int64_t>(std::ceil(roiW / ow));
  return {static_cast<int64_t>(r[0]), startH, startW, roiH / oh, roiW / ow, std::max<int64_t>(gridH, 0),
          std::max<int64_t>(gridW, 0)};
}

/// One bilinear sample: four plane offsets and weights (all weights 0 outside the map).
struct Sample {
  int64_t p1, p2, p3, p4;
  float w1, w2, w3, w4;
};

Sample corners(int64_t H, int64_t W, float y, float x) {
  if (y < -1.f || y > static_cast<float>(H) || x < -1.f || x > static_cast<float>(W)) return {0, 0, 0, 0, 0, 0, 0, 0};
  if (y <= 0) y = 0;
  if (x <= 0) x = 0;
  int64_t yLow = static_cast<int64_t>(y), xLow = static_cast<int64_t>(x), yHigh, xHigh;
  if (yLow >= H - 1) { yHigh = yLow = H - 1; y = static_cast<float>(yLow); } else { yHigh = yLow + 1; }
  if (xLow >= W - 1) { xHigh = xLow = W - 1; x = static_cast<float>(xLow); } else { xHigh = xLow + 1; }
  const float ly = y - static_cast<float>(yLow), lx = x - static_cast<float>(xLow), hy = 1.f - ly, hx = 1.f - lx;
  return {yLow * W + xLow, yLow * W + xHigh, yHigh * W + xLow, yHigh * W + xHigh, hy * hx, hy * lx, ly * hx, ly * lx};
}

/// Every sample of a roi, bin by bin (row-major), gridH * gridW per bin.
void alignSamples(const RoiBox& b, const RoiGeom& g, std::vector<Sample>& out) {
  out.clear();
  const float gh = static_cast<float>(b.gridH), gw = static_cast<float>(b.gridW);
  for (int64_t ph = 0; ph < g.OH; ++ph)
    for (int64_t pw = 0; pw < g.OW; ++pw)
      for (int64_t iy = 0; iy < b.gridH; ++iy) {
        const float yy = b.startH + static_cast<float>(ph) * b.binH + static_cast<float>(iy + .5f) * b.binH / gh;
        for (int64_t ix = 0; ix < b.gridW; ++ix) {
          const float xx = b.startW + static_cast<float>(pw) * b.binW + static_cast<float>(ix + .5f) * b.binW / gw;
          out.push_back(corners(g.H, g.W, yy, xx));
        }
      }
}

/// [N, C, H, W] in channels-last order (oneDNN's acdb): a bilinear sample then reads and
/// writes four contiguous C-vectors, where NCHW would jump between planes per channel.
memory::desc channelsLast(const memory::dims& nchw) { return memory::desc(nchw, dt::f32, tag::acdb); }

// roiAlign(x, rois, geometry) -> y [K, C, OH, OW] (plain)
Napi::Value RoiAlign(const Napi::CallbackInfo& info) {
  return guarded(info, "roiAlign", [&]() -> Napi::Value {
    Storage* xs = Storage::From(info[0], "x");
    Storage* rs = Storage::From(info[1], "rois");
    const RoiGeom g = roiGeom(info, 2);
    expectDims(xs, {g.N, g.C, g.H, g.W}, "x");
    const float* rois = checkedRois(rs, g);
    const bool work = g.K > 0 && g.C > 0;
    const float* x = work ? static_cast<const float*>(xs->as(channelsLast({g.N, g.C, g.H, g.W})).get_data_handle()) : nullptr;
    Outputs outs(info.Env());
    auto ys = outs.add(plainDesc({g.K, g.C, g.OH, g.OW}, dt::f32));
    float* y = static_cast<float*>(ys.s->data());
    const int64_t bins = g.OH * g.OW, C = g.C, image = g.H * g.W * C;
#pragma omp parallel num_threads(numThreads()) if (work && g.K * g.C * bins > 4096)
    {
      std::vector<Sample> s;
      std::vector<float> acc(static_cast<size_t>(C));
#pragma omp for schedule(dynamic, 1)
      for (int64_t k = 0; k < g.K; ++k) {
        const RoiBox b = alignBox(rois + k * 5, g);
        alignSamples(b, g, s);
        const int64_t per = b.gridH * b.gridW;
        const float count = static_cast<float>(std::max<int64_t>(per, 1));
        const float* xb = x + b.batch * image;
        for (int64_t o = 0; o < bins; ++o) {
          float* a = acc.data();
          std::fill(a, a + C, 0.f);
          for (const Sample* p = s.data() + o * per, *e = p + per; p < e; ++p) {
            // NOTE: a sample outside the map has weights 0 at offset 0, as torchvision's
            // pre_calc (so a NaN at x[0] spreads there too)
            const float *x1 = xb + p->p1 * C, *x2 = xb + p->p2 * C, *x3 = xb + p->p3 * C, *x4 = xb + p->p4 * C;
            const float w1 = p->w1, w2 = p->w2, w3 = p->w3, w4 = p->w4;
            for (int64_t c = 0; c < C; ++c) a[c] += w1 * x1[c] + w2 * x2[c] + w3 * x3[c] + w4 * x4[c];
          }
          float* yk = y + k * C * bins + o;
          for (int64_t c = 0; c < C; ++c) yk[c * bins] = a[c] / count;
        }
      }
    }
    outs.commit();
    return ys.obj;
  });
}

/// Splits [0, C) among the threads of the enclosing parallel region.
void channelRange(int64_t C, int64_t& c0, int64_t& c1) {
  const int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
  c0 = C * t / T;
  c1 = C * (t + 1) / T;
}

// roiAlignBackward(dy, rois, geometry) -> dx [N, C, H, W] (channels-last storage)
Napi::Value RoiAlignBackward(const Napi::CallbackInfo& info) {
  return guarded(info, "roiAlignBackward", [&]() -> Napi::Value {
    Storage* dys = Storage::From(info[0], "dy");
    Storage* rs = Storage::From(info[1], "rois");
    const RoiGeom g = roiGeom(info, 2);
    expectDims(dys, {g.K, g.C, g.OH, g.OW}, "dy");
    const float* rois = checkedRois(rs, g);
    const bool work = g.K > 0 && g.C > 0;
    const float* dy = work ? plainF32(dys, {g.K, g.C, g.OH, g.OW}) : nullptr;
    Outputs outs(info.Env());
    const memory::dims nchw{g.N, g.C, g.H, g.W};
    auto dxs = outs.add(work ? channelsLast(nchw) : plainDesc(nchw, dt::f32));
    float* dx = static_cast<float*>(dxs.s->data());
    const int64_t bins = g.OH * g.OW, C = g.C, image = g.H * g.W * C;
    std::fill(dx, dx + g.N * image, 0.f);
    const int nt = work && g.K * g.C * bins > 4096 ? static_cast<int>(std::min<int64_t>(numThreads(), g.C)) : 1;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
      int64_t c0, c1;
      channelRange(C, c0, c1);  // this thread's channels: no two threads add into one element
      std::vector<Sample> s;
      std::vector<float> d(static_cast<size_t>(C));
      for (int64_t k = 0; k < g.K && c0 < c1; ++k) {
        const RoiBox b = alignBox(rois + k * 5, g);
        const int64_t per = b.gridH * b.gridW;
        if (per == 0) continue;  // torchvision's backward divides by the bare count: an empty grid adds nothing
        alignSamples(b, g, s);
        const float count = static_cast<float>(per);
        float* db = dx + b.batch * image;
        for (int64_t o = 0; o < bins; ++o) {
          const float* dyk = dy + k * C * bins + o;
          for (int64_t c = c0; c < c1; ++c) d[c] = dyk[c * bins] / count;
          for (const Sample* p = s.data() + o * per, *e = p + per; p < e; ++p) {
            if (p->w1 == 0 && p->w2 == 0 && p->w3 == 0 && p->w4 == 0) continue;  // outside the map
            float *x1 = db + p->p1 * C, *x2 = db + p->p2 * C, *x3 = db + p->p3 * C, *x4 = db + p->p4 * C;
            const float w1 = p->w1, w2 = p->w2, w3 = p->w3, w4 = p->w4;
            for (int64_t c = c0; c < c1; ++c) {
              x1[c] += d[c] * w1;
              x2[c] += d[c] * w2;
              x3[c] += d[c] * w3;
              x4[c] += d[c] * w4;
            }
          }
        }
      }
    }
    outs.commit();
    return dxs.obj;
  });
}

// ---- RoIPool ----------------------------------------------------------------------------

// roiPool(x, rois, geometry) -> { y [K, C, OH, OW], saved: int32 argmax (plane index, -1 = empty bin) }
Napi::Value RoiPool(const Napi::CallbackInfo& info) {
  return guarded(info, "roiPool", [&]() -> Napi::Value {
    Storage* xs = Storage::From(info[0], "x");
    Storage* rs = Storage::From(info[1], "rois");
    const RoiGeom g = roiGeom(info, 2);
    expectDims(xs, {g.N, g.C, g.H, g.W}, "x");
    const float* rois = checkedRois(rs, g);
    const float* x = g.K > 0 ? plainF32(xs, {g.N, g.C, g.H, g.W}) : nullptr;
    Outputs outs(info.Env());
    auto ys = outs.add(plainDesc({g.K, g.C, g.OH, g.OW}, dt::f32));
    auto as = outs.add(plainDesc({g.K, g.C, g.OH, g.OW}, dt::s32));
    float* y = static_cast<float*>(ys.s->data());
    int32_t* argmax = static_cast<int32_t*>(as.s->data());
    const int64_t plane = g.H * g.W;
    auto clip = [](int64_t v, int64_t hi) { return std::min(std::max<int64_t>(v, 0), hi); };
#pragma omp parallel for num_threads(numThreads()) schedule(dynamic, 1) if (g.K * g.C > 256)
    for (int64_t k = 0; k < g.K; ++k) {
      const float* r = rois + k * 5;
      const int64_t batch = static_cast<int64_t>(r[0]);
      const int64_t startW = std::lround(r[1] * g.spatialScale), startH = std::lround(r[2] * g.spatialScale);
      const int64_t endW = std::lround(r[3] * g.spatialScale), endH = std::lround(r[4] * g.spatialScale);
      const float binH = static_cast<float>(std::max<int64_t>(endH - startH + 1, 1)) / static_cast<float>(g.OH);
      const float binW = static_cast<float>(std::max<int64_t>(endW - startW + 1, 1)) / static_cast<float>(g.OW);
      for (int64_t ph = 0; ph < g.OH; ++ph) {
        const int64_t h0 = clip(static_cast<int64_t>(std::floor(static_cast<float>(ph) * binH)) + startH, g.H);
        const int64_t h1 = clip(static_cast<int64_t>(std::ceil(static_cast<float>(ph + 1) * binH)) + startH, g.H);
        for (int64_t pw = 0; pw < g.OW; ++pw) {
          const int64_t w0 = clip(static_cast<int64_t>(std::floor(static_cast<float>(pw) * binW)) + startW, g.W);
          const int64_t w1 = clip(static_cast<int64_t>(std::ceil(static_cast<float>(pw + 1) * binW)) + startW, g.W);
          const bool empty = h1 <= h0 || w1 <= w0;
          for (int64_t c = 0; c < g.C; ++c) {
            const float* xp = x + (batch * g.C + c) * plane;
            float best = empty ? 0.f : -FLT_MAX;
            int64_t at = -1;
            for (int64_t h = h0; h < h1; ++h)
              for (int64_t w = w0; w < w1; ++w)
                if (xp[h * g.W + w] > best) { best = xp[h * g.W + w]; at = h * g.W + w; }
            const int64_t o = ((k * g.C + c) * g.OH + ph) * g.OW + pw;
            y[o] = best;
            argmax[o] = static_cast<int32_t>(at);
          }
        }
      }
    }
    outs.commit();
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("y", ys.obj);
    o.Set("saved", as.obj);
    return o;
  });
}

// roiPoolBackward(dy, rois, saved, geometry) -> dx [N, C, H, W]
Napi::Value RoiPoolBackward(const Napi::CallbackInfo& info) {
  return guarded(info, "roiPoolBackward", [&]() -> Napi::Value {
    Storage* dys = Storage::From(info[0], "dy");
    Storage* rs = Storage::From(info[1], "rois");
    Storage* ss = Storage::From(info[2], "saved");
    const RoiGeom g = roiGeom(info, 3);
    expectDims(dys, {g.K, g.C, g.OH, g.OW}, "dy");
    const float* rois = checkedRois(rs, g);
    if (ss->type() != dt::s32 || numelOf(dimsOf(ss->md())) != g.K * g.C * g.OH * g.OW)
      throw OpError("'saved' is not this geometry's roiPool argmax");
    const float* dy = g.K > 0 ? plainF32(dys, {g.K, g.C, g.OH, g.OW}) : nullptr;
    const int32_t* argmax = g.K > 0 ? static_cast<const int32_t*>(ss->as(plainDesc({g.K, g.C, g.OH, g.OW}, dt::s32)).get_data_handle()) : nullptr;
    Outputs outs(info.Env());
    auto dxs = outs.add(plainDesc({g.N, g.C, g.H, g.W}, dt::f32));
    float* dx = static_cast<float*>(dxs.s->data());
    const int64_t bins = g.OH * g.OW, plane = g.H * g.W;
    std::fill(dx, dx + g.N * g.C * plane, 0.f);
    const int nt = g.K * g.C * bins > 4096 ? static_cast<int>(std::min<int64_t>(numThreads(), std::max<int64_t>(g.C, 1))) : 1;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
      int64_t c0, c1;
      channelRange(g.C, c0, c1);
      for (int64_t k = 0; k < g.K; ++k) {
        const int64_t batch = static_cast<int64_t>(rois[k * 5]);
        for (int64_t c = c0; c < c1; ++c) {
          float* dxp = dx + (batch * g.C + c) * plane;
          const int64_t base = (k * g.C + c) * bins;
          for (int64_t o = 0; o < bins; ++o) {
            const int32_t a = argmax[base + o];
            if (a >= 0 && a < plane) dxp[a] += dy[base + o];
          }
        }
      }
    }
    outs.commit();
    return dxs.obj;
  });
}

// ---- interpolate ------------------------------------------------------------------------

struct InterpGeom {
  int64_t N, C, H, W, OH, OW;
  bool bilinear, alignCorners;
  double scaleH, scaleW;  // <= 0: none reached the kernel (ATen then uses in / out)
};

InterpGeom interpGeom(const Napi::CallbackInfo& info, size_t i) {
  const Napi::Object o = objArg(info, i, "geometry");
  const Napi::Value mode = o.Get("mode");
  if (!mode.IsString()) throw OpError("'mode' must be 'nearest' or 'bilinear'");
  const std::string m = mode.As<Napi::String>().Utf8Value();
  if (m != "nearest" && m != "bilinear") throw OpError("'mode' must be 'nearest' or 'bilinear', got '" + m + "'");
  auto scale = [&](const char* name) {
    const Napi::Value v = o.Get(name);
    return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : 0.0;
  };
  InterpGeom g{intProp(o, "N"), intProp(o, "C"), intProp(o, "H"), intProp(o, "W"), intProp(o, "OH"), intProp(o, "OW"),
               m == "bilinear", o.Get("alignCorners").ToBoolean().Value(), scale("scaleH"), scale("scaleW")};
  if (g.N < 0 || g.C < 0 || g.H < 1 || g.W < 1 || g.OH < 1 || g.OW < 1)
    throw OpError("geometry needs N, C >= 0 and H, W, OH, OW >= 1");
  return g;
}

float scalesValue(double scale, int64_t in, int64_t out) {  // ATen compute_scales_value
  return scale > 0 && std::isfinite(scale) ? static_cast<float>(1.0 / scale)
                                           : static_cast<float>(in) / static_cast<float>(out);
}

/// upsample_nearest2d's source index per output index (UpSample.h nearest_idx).
std::vector<int64_t> nearestIndices(int64_t in, int64_t out, double scale) {
  std::vector<int64_t> idx(static_cast<size_t>(out));
  const float s = scalesValue(scale, in, out);
  for (int64_t o = 0; o < out; ++o) {
    int64_t i;
    if (out == in) i = o;
    else if (out == 2 * in) i = o >> 1;
    else i = static_cast<int64_t>(std::floor(static_cast<float>(o) * s));
    idx[static_cast<size_t>(o)] = std::min(std::max<int64_t>(i, 0), in - 1);
  }
  return idx;
}

struct Linear {
  std::vector<int64_t> i0, i1;
  std::vector<float> l0, l1;
};

/// upsample_bilinear2d's two source indices and weights per output index
/// (UpSampleKernel.cpp compute_source_index_and_lambda).
Linear linearIndices(int64_t in, int64_t out, bool alignCorners, double scale) {
  Linear t{std::vector<int64_t>(static_cast<size_t>(out)), std::vector<int64_t>(static_cast<size_t>(out)),
           std::vector<float>(static_cast<size_t>(out)), std::vector<float>(static_cast<size_t>(out))};
  const float ratio = alignCorners ? (out > 1 ? static_cast<float>(in - 1) / static_cast<float>(out - 1) : 0.f)
                                   : scalesValue(scale, in, out);
  for (int64_t o = 0; o < out; ++o) {
    const size_t u = static_cast<size_t>(o);
    if (out == in) { t.i0[u] = t.i1[u] = o; t.l0[u] = 1; t.l1[u] = 0; continue; }
    float real;
    if (alignCorners) {
      real = ratio * static_cast<float>(o);
    } else {
      real = static_cast<float>(ratio * (static_cast<double>(o) + 0.5) - 0.5);  // NOTE: double, as ATen's `dst_index + 0.5`
      if (real < 0) real = 0;
    }
    const int64_t i0 = std::min(static_cast<int64_t>(real), in - 1);
    t.i0[u] = i0;
    t.i1[u] = i0 + (i0 < in - 1 ? 1 : 0);
    t.l1[u] = std::min(std::max(real - static_cast<float>(i0), 0.f), 1.f);
    t.l0[u] = 1.f - t.l1[u];
  }
  return t;
}

// interpolate(x, geometry) -> y [N, C, OH, OW]
Napi::Value Interpolate(const Napi::CallbackInfo& info) {
  return guarded(info, "interpolate", [&]() -> Napi::Value {
    Storage* xs = Storage::From(info[0], "x");
    const InterpGeom g = interpGeom(info, 1);
    expectDims(xs, {g.N, g.C, g.H, g.W}, "x");
    const int64_t P = g.N * g.C, plane = g.H * g.W, oplane = g.OH * g.OW;
    const float* x = P > 0 ? plainF32(xs, {g.N, g.C, g.H, g.W}) : nullptr;
    Outputs outs(info.Env());
    auto ys = outs.add(plainDesc({g.N, g.C, g.OH, g.OW}, dt::f32));
    float* y = static_cast<float*>(ys.s->data());
    if (!g.bilinear) {
      const auto rows = nearestIndices(g.H, g.OH, g.scaleH), cols = nearestIndices(g.W, g.OW, g.scaleW);
#pragma omp parallel for num_threads(numThreads()) if (P * oplane > 16384)
      for (int64_t p = 0; p < P; ++p)
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          const float* src = x + p * plane + rows[static_cast<size_t>(oh)] * g.W;
          float* dst = y + p * oplane + oh * g.OW;
          for (int64_t ow = 0; ow < g.OW; ++ow) dst[ow] = src[cols[static_cast<size_t>(ow)]];
        }
    } else {
      const Linear r = linearIndices(g.H, g.OH, g.alignCorners, g.scaleH), c = linearIndices(g.W, g.OW, g.alignCorners, g.scaleW);
#pragma omp parallel for num_threads(numThreads()) if (P * oplane > 16384)
      for (int64_t p = 0; p < P; ++p)
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          const size_t h = static_cast<size_t>(oh);
          const float* row0 = x + p * plane + r.i0[h] * g.W;
          const float* row1 = x + p * plane + r.i1[h] * g.W;
          float* dst = y + p * oplane + oh * g.OW;
          for (int64_t ow = 0; ow < g.OW; ++ow) {
            const size_t w = static_cast<size_t>(ow);
            const float a = row0[c.i0[w]] * c.l0[w] + row0[c.i1[w]] * c.l1[w];
            const float b = row1[c.i0[w]] * c.l0[w] + row1[c.i1[w]] * c.l1[w];
            dst[ow] = a * r.l0[h] + b * r.l1[h];
          }
        }
    }
    outs.commit();
    return ys.obj;
  });
}

// interpolateBackward(dy, geometry) -> dx [N, C, H, W]
Napi::Value InterpolateBackward(const Napi::CallbackInfo& info) {
  return guarded(info, "interpolateBackward", [&]() -> Napi::Value {
    Storage* dys = Storage::From(info[0], "dy");
    const InterpGeom g = interpGeom(info, 1);
    expectDims(dys, {g.N, g.C, g.OH, g.OW}, "dy");
    const int64_t P = g.N * g.C, plane = g.H * g.W, oplane = g.OH * g.OW;
    const float* dy = P > 0 ? plainF32(dys, {g.N, g.C, g.OH, g.OW}) : nullptr;
    Outputs outs(info.Env());
    auto dxs = outs.add(plainDesc({g.N, g.C, g.H, g.W}, dt::f32));
    float* dx = static_cast<float*>(dxs.s->data());
    std::fill(dx, dx + P * plane, 0.f);
    if (!g.bilinear) {
      const auto rows = nearestIndices(g.H, g.OH, g.scaleH), cols = nearestIndices(g.W, g.OW, g.scaleW);
#pragma omp parallel for num_threads(numThreads()) if (P * oplane > 16384)
      for (int64_t p = 0; p < P; ++p)
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          float* dst = dx + p * plane + rows[static_cast<size_t>(oh)] * g.W;
          const float* src = dy + p * oplane + oh * g.OW;
          for (int64_t ow = 0; ow < g.OW; ++ow) dst[cols[static_cast<size_t>(ow)]] += src[ow];
        }
    } else {
      const Linear r = linearIndices(g.H, g.OH, g.alignCorners, g.scaleH), c = linearIndices(g.W, g.OW, g.alignCorners, g.scaleW);
#pragma omp parallel for num_threads(numThreads()) if (P * oplane > 16384)
      for (int64_t p = 0; p < P; ++p)
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          const size_t h = static_cast<size_t>(oh);
          float* row0 = dx + p * plane + r.i0[h] * g.W;
          float* row1 = dx + p * plane + r.i1[h] * g.W;
          const float* src = dy + p * oplane + oh * g.OW;
          for (int64_t ow = 0; ow < g.OW; ++ow) {
            const size_t w = static_cast<size_t>(ow);
            const float d0 = src[ow] * r.l0[h], d1 = src[ow] * r.l1[h];
            row0[c.i0[w]] += d0 * c.l0[w];
            row0[c.i1[w]] += d0 * c.l1[w];
            row1[c.i0[w]] += d1 * c.l0[w];
            row1[c.i1[w]] += d1 * c.l1[w];
          }
        }
    }
    outs.commit();
    return dxs.obj;
  });
}

/// A Float32Array argument's data (offset included; SharedArrayBuffer-backed arrays too).
const float* floatArrayArg(const Napi::CallbackInfo& info, size_t i, const char* what, size_t& n) {
  if (info.Length() <= i || !info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw OpError(std::string("'") + what + "' must be a Float32Array");
  Napi::TypedArray ta = info[i].As<Napi::TypedArray>();
  void* data = nullptr;
  if (napi_get_typedarray_info(info.Env(), ta, nullptr, nullptr, &data, nullptr, nullptr) != napi_ok)
    throw OpError(std::string("cannot read '") + what + "'");
  n = ta.ElementLength();
  return static_cast<const float*>(data);
}

// nms(boxes Float32Array [n*4], scores Float32Array [n], iouThreshold) -> Int32Array of the
// kept indices by decreasing score. torchvision.ops.nms's CPU kernel (nms_kernel_impl, v0.14):
// the boxes in decreasing score order (ties in index order, NaN scores last), each kept box
// drops every later box whose IoU with it exceeds the threshold. Float32 arithmetic in the
// kernel's order (this file is built without -march: no FMA contraction), the float IoU
// compared with the double threshold. Serial: a few thousand boxes take a millisecond or two.
// The judge is src/backend/reference/nms.ts.
Napi::Value Nms(const Napi::CallbackInfo& info) {
  return guarded(info, "nms", [&]() -> Napi::Value {
    size_t nb = 0, n = 0;
    const float* boxes = floatArrayArg(info, 0, "boxes", nb);
    const float* scores = floatArrayArg(info, 1, "scores", n);
    if (nb != 4 * n) throw OpError("'boxes' has " + std::to_string(nb) + " numbers; " + std::to_string(n) + " scores need " + std::to_string(4 * n));
    if (info.Length() < 3 || !info[2].IsNumber()) throw OpError("'iouThreshold' must be a number");
    const double thr = info[2].As<Napi::Number>().DoubleValue();
    std::vector<int32_t> order(n);
    for (size_t i = 0; i < n; ++i) order[i] = static_cast<int32_t>(i);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
      const float sa = scores[a], sb = scores[b];
      if (std::isnan(sb)) return !std::isnan(sa);
      return sa > sb;
    });
    std::vector<float> x1(n), y1(n), x2(n), y2(n), area(n);
    for (size_t k = 0; k < n; ++k) {
      const float* b = boxes + 4 * static_cast<size_t>(order[k]);
      x1[k] = b[0]; y1[k] = b[1]; x2[k] = b[2]; y2[k] = b[3];
      area[k] = (b[2] - b[0]) * (b[3] - b[1]);
    }
    // `(double)ovr > thr` as a float comparison, so the inner loop vectorises: with tf = thr
    // rounded to float, ovr > thr <=> ovr >= tf where tf rounded up, else ovr > tf.
    const float tf = static_cast<float>(thr);
    const bool roundedUp = static_cast<double>(tf) > thr;
    std::vector<int32_t> suppressed(n, 0);
    std::vector<int32_t> keep;
    for (size_t a = 0; a < n; ++a) {
      if (suppressed[a]) continue;
      keep.push_back(order[a]);
      const float ax1 = x1[a], ay1 = y1[a], ax2 = x2[a], ay2 = y2[a], aarea = area[a];
      // Every later box, suppressed or not (or-ing a flag twice changes nothing): no branch.
      auto sweep = [&](auto over) {
        int32_t* sup = suppressed.data();
        for (size_t b = a + 1; b < n; ++b) {
          // std::max / std::min as torchvision's kernel writes them (a < b ? b : a)
          const float xx1 = ax1 < x1[b] ? x1[b] : ax1, yy1 = ay1 < y1[b] ? y1[b] : ay1;
          const float xx2 = x2[b] < ax2 ? x2[b] : ax2, yy2 = y2[b] < ay2 ? y2[b] : ay2;
          const float dw = xx2 - xx1, dh = yy2 - yy1;
          const float w = 0.f < dw ? dw : 0.f, h = 0.f < dh ? dh : 0.f;
          const float inter = w * h;
          const float ovr = inter / (aarea + area[b] - inter);
          sup[b] |= over(ovr) ? 1 : 0;
        }
      };
      if (roundedUp) sweep([tf](float o) { return o >= tf; });
      else sweep([tf](float o) { return o > tf; });
    }
    auto out = Napi::Int32Array::New(info.Env(), keep.size());
    if (!keep.empty()) std::memcpy(out.Data(), keep.data(), keep.size() * sizeof(int32_t));
    return out;
  });
}

}  // namespace

void exportDetect(Napi::Env env, Napi::Object exports) {
  exports.Set("roiAlign", Napi::Function::New(env, RoiAlign, "roiAlign"));
  exports.Set("roiAlignBackward", Napi::Function::New(env, RoiAlignBackward, "roiAlignBackward"));
  exports.Set("roiPool", Napi::Function::New(env, RoiPool, "roiPool"));
  exports.Set("roiPoolBackward", Napi::Function::New(env, RoiPoolBackward, "roiPoolBackward"));
  exports.Set("interpolate", Napi::Function::New(env, Interpolate, "interpolate"));
  exports.Set("interpolateBackward", Napi::Function::New(env, InterpolateBackward, "interpolateBackward"));
  exports.Set("nms", Napi::Function::New(env, Nms, "nms"));
}

}  // namespace rn
