// A chain of BN-folded inference convolutions (bias, residual sum and ReLU as post-ops) and
// max pools, run in one call: what models/fused.ts would otherwise run op by op. Op by op,
// each of a resnet50's 57 primitives at batch 1 cost ~40 us more than the primitive itself
// (tensor bookkeeping, two N-API crossings, a free, with the caches cold after every
// primitive): ~2 of 26 ms. Here a run is one crossing and a loop over cached primitives, as
// in a hand-written oneDNN network (bench/bare/bare_net.cc).
// Intermediates live in an arena of the chain's own, reused across runs (first-touch page
// faults are paid once) and within one: a buffer is reused once its last reader has run, and
// a block's last convolution sums into its shortcut's buffer when nothing reads it later.
// Each input size is planned once (primitives, layouts, buffers). The requested outputs are
// new storages; the weights are the caller's storages (held by reference: freed ones are
// reported, never read), each in the layout its primitive wants through the storage's copy
// cache. One JS thread uses a chain (the one that made it, as any storage).
#include "common.h"

#include <algorithm>
#include <map>

namespace rn {

namespace {

const napi_type_tag kChainTag = {0x7265736e65742d63ULL, 0x6f6e762d63686169ULL};

enum class Op { conv, maxpool };

// One node as the caller described it.
struct Node {
  Op op;
  int src;        // node index, or -1: the chain's input
  int residual;   // node index, -1: the chain's input, -2: none
  bool relu;
  int64_t K, R, S, sH, sW, pH, pW, dH, dW, groups;  // conv (kernel R x S; maxpool: R x S too)
  Napi::ObjectReference w, b;                        // conv: weight, bias (b may be empty)
};

// One node as planned for one input size.
struct Step {
  std::shared_ptr<void> keep;             // the cached (pd, primitive)
  const dnnl::primitive* prim = nullptr;
  const dnnl::primitive_desc_base* pd = nullptr;
  memory::desc srcMd, dstMd, weiMd, biasMd;
  int srcTemp = -1;                       // arena slot src is reordered into, when its layout differs
  int slot = -1;                          // arena slot of dst; -1: a new storage (an output)
  bool inPlace = false;                   // dst is the residual's buffer (it holds the residual)
  memory::dims dims;                      // [N, C, H, W] of dst
};

struct Plan {
  std::vector<Step> steps;
  std::vector<size_t> slotBytes;          // what each arena slot must hold for this size
};

struct Chain {
  std::vector<Node> nodes;
  std::vector<int> outputs;               // node indices returned, in order
  std::vector<bool> isOutput;
  int64_t inC = 0;
  dt type = dt::f32;
  std::map<std::vector<int64_t>, Plan> plans;  // by [N, H, W, x's data type]
  struct Slot { void* ptr = nullptr; size_t bytes = 0; };
  std::vector<Slot> arena;
  Napi::Env env;
  int64_t reported = 0;                   // arena bytes V8 was told of
  explicit Chain(Napi::Env e) : env(e) {}
  ~Chain() { release(); }
  void release() {
    for (auto& s : arena) if (s.ptr) poolFree(s.ptr, s.bytes);
    arena.clear();
    if (reported) accountAlloc(env, -reported, 0);
    reported = 0;
  }
};

Storage* weightOf(const Napi::ObjectReference& ref, size_t node, const char* what) {
  const std::string name = std::string("node ") + std::to_string(node) + " " + what;
  return Storage::From(ref.Value(), name.c_str());
}

// Slots of the arena for one plan: a freed slot is reused by the next buffer it can hold
// (the smallest such), else the largest free one grows, else a new one.
class SlotAllocator {
 public:
  explicit SlotAllocator(Plan& p) : p_(p) {}
  int take(size_t bytes) {
    int best = -1;
    for (int s : free_)
      if (p_.slotBytes[s] >= bytes && (best < 0 || p_.slotBytes[s] < p_.slotBytes[best])) best = s;
    if (best < 0)
      for (int s : free_)
        if (best < 0 || p_.slotBytes[s] > p_.slotBytes[best]) best = s;
    if (best < 0) {
      p_.slotBytes.push_back(bytes);
      return static_cast<int>(p_.slotBytes.size()) - 1;
    }
    free_.erase(std::find(free_.begin(), free_.end(), best));
    p_.slotBytes[best] = std::max(p_.slotBytes[best], bytes);
    return best;
  }
  void give(int slot) { if (slot >= 0) free_.push_back(slot); }
 private:
  Plan& p_;
  std::vector<int> free_;
};

Plan makePlan(const Chain& c, const memory::desc& xMd) {
  const memory::dims x = dimsOf(xMd);
  const size_t n = c.nodes.size();
  std::vector<int> lastUse(n, -1);
  for (size_t i = 0; i < n; ++i) {
    const Node& nd = c.nodes[i];
    if (nd.src >= 0) lastUse[nd.src] = static_cast<int>(i);
    if (nd.residual >= 0) lastUse[nd.residual] = static_cast<int>(i);
  }
  Plan p;
  p.steps.resize(n);
  SlotAllocator slots(p);
  for (size_t i = 0; i < n; ++i) {
    const Node& nd = c.nodes[i];
    Step& st = p.steps[i];
    const memory::desc in = nd.src < 0 ? xMd : p.steps[nd.src].dstMd;
    const memory::dims s = nd.src < 0 ? x : p.steps[nd.src].dims;
    const std::string at = "node " + std::to_string(i) + ": ";
    if (nd.op == Op::conv) {
      Storage* w = weightOf(nd.w, i, "weight");
      const memory::dims wd = dimsOf(w->md());
      if (wd.size() != 4 || wd[0] != nd.K || wd[1] * nd.groups != s[1] || wd[2] != nd.R || wd[3] != nd.S)
        throw OpError(at + "weight is not [K, C/groups, R, S] for an input of " + std::to_string(s[1]) + " channels");
      const int64_t effR = nd.dH * (nd.R - 1) + 1, effS = nd.dW * (nd.S - 1) + 1;
      if (effR > s[2] + 2 * nd.pH || effS > s[3] + 2 * nd.pW)
        throw OpError(at + "the kernel is larger than the padded input " + std::to_string(s[2]) + "x" + std::to_string(s[3]));
      const ConvGeom g = convGeom({s[0], s[1], s[2], s[3], nd.K, nd.R, nd.S, (s[2] + 2 * nd.pH - effR) / nd.sH + 1,
                                   (s[3] + 2 * nd.pW - effS) / nd.sW + 1, nd.sH, nd.sW, nd.pH, nd.pW, nd.dH, nd.dW, nd.groups});
      auto e = convFused(g, !nd.b.IsEmpty(), nd.residual != -2, nd.relu, c.type);
      st.prim = &e->prim;
      st.pd = &e->pd;
      st.srcMd = e->pd.src_desc();
      st.dstMd = e->pd.dst_desc();
      st.weiMd = e->pd.weights_desc();
      st.biasMd = e->pd.bias_desc();
      st.dims = {g.N, g.K, g.OH, g.OW};
      st.keep = e;
    } else {
      const int64_t OH = (s[2] + 2 * nd.pH - nd.R) / nd.sH + 1, OW = (s[3] + 2 * nd.pW - nd.S) / nd.sW + 1;
      if (OH < 1 || OW < 1) throw OpError(at + "the pooling kernel is larger than the padded input");
      auto e = maxPoolInference(in, {s[0], s[1], s[2], s[3], OH, OW, nd.R, nd.S, nd.sH, nd.sW, nd.pH, nd.pW});
      st.prim = &e->prim;
      st.pd = &e->pd;
      st.srcMd = e->pd.src_desc();
      st.dstMd = e->pd.dst_desc();
      st.dims = {s[0], s[1], OH, OW};
      st.keep = e;
    }
    // The input in the layout the primitive wants (the chain's input goes through its copy cache).
    if (nd.src >= 0 && !(in == st.srcMd)) st.srcTemp = slots.take(st.srcMd.get_size());
    // dst: a new storage for an output; the residual's own buffer when this is its last
    // reader and the layouts agree; else an arena slot.
    const int r = nd.residual;
    if (c.isOutput[i]) {
      st.slot = -1;
    } else if (r >= 0 && r != nd.src && !c.isOutput[r] && lastUse[r] == static_cast<int>(i) &&
               p.steps[r].dstMd == st.dstMd && p.steps[r].slot >= 0) {
      st.slot = p.steps[r].slot;
      st.inPlace = true;
    } else {
      st.slot = slots.take(st.dstMd.get_size());
    }
    slots.give(st.srcTemp);
    for (int used : {nd.src, r}) {
      if (used < 0 || lastUse[used] != static_cast<int>(i) || c.isOutput[used]) continue;
      if (st.inPlace && used == r) continue;  // its buffer is now this node's
      slots.give(p.steps[used].slot);
      lastUse[used] = -1;  // given once (src and residual may be the same node)
    }
  }
  return p;
}

Chain* chainOf(const Napi::Value& v) {
  bool ours = false;
  if (!v.IsObject() || napi_check_object_type_tag(v.Env(), v, &kChainTag, &ours) != napi_ok || !ours)
    throw OpError("'chain' is not a conv chain (make one with convChain)");
  void* p = nullptr;
  if (napi_unwrap(v.Env(), v, &p) != napi_ok || !p) throw OpError("'chain' was already freed");
  return static_cast<Chain*>(p);
}

int64_t numField(const Napi::Object& o, const char* name, const std::string& at) {
  const Napi::Value v = o.Get(name);
  if (!v.IsNumber()) throw OpError(at + "'" + name + "' must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (d != static_cast<double>(static_cast<int64_t>(d))) throw OpError(at + "'" + name + "' must be an integer");
  return static_cast<int64_t>(d);
}

// convChain({ nodes, outputs, inChannels, precision }) -> chain. nodes[i]:
//   { op: 'conv', src, residual?, relu, weight, bias | null, K, R, S, strideH, strideW, padH, padW,
//     dilationH, dilationW, groups }   or   { op: 'maxpool', src, R, S, strideH, strideW, padH, padW }
// src and residual: an earlier node's index, or -1 for the chain's input; residual absent: none.
Napi::Value ConvChain(const Napi::CallbackInfo& info) {
  return guarded(info, "convChain", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const Napi::Object spec = objArg(info, 0, "spec");
    auto chain = std::make_unique<Chain>(env);
    chain->type = spec.Get("precision").IsString() && spec.Get("precision").As<Napi::String>().Utf8Value() == "bf16"
                      ? dt::bf16 : dt::f32;
    chain->inC = numField(spec, "inChannels", "");
    if (!spec.Get("nodes").IsArray()) throw OpError("'nodes' must be an array");
    const Napi::Array nodes = spec.Get("nodes").As<Napi::Array>();
    if (nodes.Length() == 0) throw OpError("'nodes' is empty");
    for (uint32_t i = 0; i < nodes.Length(); ++i) {
      const std::string at = "node " + std::to_string(i) + ": ";
      if (!nodes.Get(i).IsObject()) throw OpError(at + "not an object");
      const Napi::Object o = nodes.Get(i).As<Napi::Object>();
      const std::string op = o.Get("op").IsString() ? o.Get("op").As<Napi::String>().Utf8Value() : "";
      Node n{};
      if (op == "conv") n.op = Op::conv;
      else if (op == "maxpool") n.op = Op::maxpool;
      else throw OpError(at + "'op' must be 'conv' or 'maxpool'");
      n.src = static_cast<int>(numField(o, "src", at));
      n.residual = o.Get("residual").IsUndefined() || o.Get("residual").IsNull() ? -2 : static_cast<int>(numField(o, "residual", at));
      if (n.src < -1 || n.src >= static_cast<int>(i) || n.residual < -2 || n.residual >= static_cast<int>(i))
        throw OpError(at + "'src' and 'residual' must name an earlier node or -1 (the input)");
      n.R = numField(o, "R", at);
      n.S = numField(o, "S", at);
      n.sH = numField(o, "strideH", at);
      n.sW = numField(o, "strideW", at);
      n.pH = numField(o, "padH", at);
      n.pW = numField(o, "padW", at);
      if (n.R < 1 || n.S < 1 || n.sH < 1 || n.sW < 1 || n.pH < 0 || n.pW < 0)
        throw OpError(at + "kernel and strides must be >= 1, padding >= 0");
      if (n.op == Op::conv) {
        n.K = numField(o, "K", at);
        n.dH = numField(o, "dilationH", at);
        n.dW = numField(o, "dilationW", at);
        n.groups = numField(o, "groups", at);
        n.relu = o.Get("relu").ToBoolean().Value();
        if (n.K < 1 || n.dH < 1 || n.dW < 1 || n.groups < 1 || n.K % n.groups != 0)
          throw OpError(at + "K, dilations and groups must be >= 1 and groups must divide K");
        Storage::From(o.Get("weight"), (at + "weight").c_str());
        n.w = Napi::Persistent(o.Get("weight").As<Napi::Object>());
        if (!o.Get("bias").IsNull() && !o.Get("bias").IsUndefined()) {
          Storage::From(o.Get("bias"), (at + "bias").c_str());
          n.b = Napi::Persistent(o.Get("bias").As<Napi::Object>());
        }
      } else if (n.residual != -2) {
        throw OpError(at + "a max pool takes no residual");
      }
      chain->nodes.push_back(std::move(n));
    }
    const Napi::Value outs = spec.Get("outputs");
    if (!outs.IsArray() || outs.As<Napi::Array>().Length() == 0) throw OpError("'outputs' must be a non-empty array of node indices");
    chain->isOutput.assign(chain->nodes.size(), false);
    for (uint32_t i = 0; i < outs.As<Napi::Array>().Length(); ++i) {
      const Napi::Value v = outs.As<Napi::Array>().Get(i);
      const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
      if (!(d >= 0 && d < static_cast<double>(chain->nodes.size())) || d != static_cast<double>(static_cast<int>(d)))
        throw OpError("'outputs' must hold node indices 0.." + std::to_string(chain->nodes.size() - 1));
      chain->outputs.push_back(static_cast<int>(d));
      chain->isOutput[static_cast<size_t>(d)] = true;
    }
    Napi::Object obj = Napi::Object::New(env);
    if (napi_type_tag_object(env, obj, &kChainTag) != napi_ok) throw OpError("type tag failed");
    Chain* raw = chain.release();
    if (napi_wrap(env, obj, raw, [](napi_env, void* data, void*) { delete static_cast<Chain*>(data); }, nullptr, nullptr) != napi_ok) {
      delete raw;
      throw OpError("wrap failed");
    }
    return obj;
  });
}

// convChainRun(chain, x) -> [y per output]: x [N, inChannels, H, W] (f32, or bf16 in bf16).
Napi::Value ConvChainRun(const Napi::CallbackInfo& info) {
  return guarded(info, "convChainRun", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Chain& c = *chainOf(info[0]);
    Storage* x = Storage::From(info[1], "x");
    const memory::dims xd = dimsOf(x->md());
    if (xd.size() != 4 || xd[1] != c.inC || !isFloat(x->type()))
      throw OpError("x must be a float [N, " + std::to_string(c.inC) + ", H, W] storage");
    const std::vector<int64_t> key{xd[0], xd[2], xd[3], static_cast<int64_t>(x->type())};
    auto it = c.plans.find(key);
    if (it == c.plans.end()) {
      if (c.plans.size() >= 16) c.plans.clear();  // many sizes (a detector's images): plan again
      it = c.plans.emplace(key, makePlan(c, plainDesc(xd, x->type()))).first;
    }
    const Plan& p = it->second;
    // The arena holds what the largest plan needs; slots grow, never shrink, until freed.
    if (c.arena.size() < p.slotBytes.size()) c.arena.resize(p.slotBytes.size());
    for (size_t s = 0; s < p.slotBytes.size(); ++s) {
      auto& slot = c.arena[s];
      if (slot.bytes >= p.slotBytes[s]) continue;
      if (slot.ptr) poolFree(slot.ptr, slot.bytes);
      slot.ptr = nullptr;
      slot.bytes = 0;
      slot.ptr = poolAlloc(p.slotBytes[s]);
      slot.bytes = p.slotBytes[s];
    }
    int64_t bytes = 0;
    for (auto& s : c.arena) bytes += static_cast<int64_t>(s.bytes);
    if (bytes != c.reported) { accountAlloc(env, bytes - c.reported, 0); c.reported = bytes; }

    Outputs outs(env);
    std::vector<memory> mem(c.nodes.size());
    std::vector<Napi::Object> made(c.nodes.size());
    for (size_t i = 0; i < c.nodes.size(); ++i) {
      const Node& nd = c.nodes[i];
      const Step& st = p.steps[i];
      memory src = nd.src < 0 ? x->as(st.srcMd) : mem[nd.src];
      if (st.srcTemp >= 0) {
        memory t(st.srcMd, eng(), c.arena[st.srcTemp].ptr);
        reorderInto(src, t);
        src = t;
      }
      memory dst;
      if (st.slot < 0) {
        auto y = outs.add(st.dstMd);
        dst = y.s->mem();
        made[i] = y.obj;
      } else {
        dst = memory(st.dstMd, eng(), c.arena[st.slot].ptr);
      }
      if (nd.residual != -2 && !st.inPlace) {
        const memory r = nd.residual < 0 ? x->mem() : mem[nd.residual];
        reorderInto(r, dst);
      }
      std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
      if (nd.op == Op::conv) {
        args.emplace(DNNL_ARG_WEIGHTS, weightOf(nd.w, i, "weight")->as(st.weiMd));
        if (!nd.b.IsEmpty()) args.emplace(DNNL_ARG_BIAS, weightOf(nd.b, i, "bias")->as(st.biasMd));
      }
      execute(*st.prim, *st.pd, std::move(args));
      mem[i] = dst;
    }
    outs.commit();
    Napi::Array ys = Napi::Array::New(env, c.outputs.size());
    for (uint32_t k = 0; k < c.outputs.size(); ++k) ys.Set(k, made[c.outputs[k]]);
    return ys;
  });
}

// convChainFree(chain): releases the arena and the plans now (later use says so).
Napi::Value ConvChainFree(const Napi::CallbackInfo& info) {
  return guarded(info, "convChainFree", [&]() -> Napi::Value {
    chainOf(info[0]);  // type check
    void* p = nullptr;
    if (napi_remove_wrap(info.Env(), info[0], &p) == napi_ok && p) delete static_cast<Chain*>(p);
    return info.Env().Undefined();
  });
}

}  // namespace

void exportChain(Napi::Env env, Napi::Object exports) {
  exports.Set("convChain", Napi::Function::New(env, ConvChain, "convChain"));
  exports.Set("convChainRun", Napi::Function::New(env, ConvChainRun, "convChainRun"));
  exports.Set("convChainFree", Napi::Function::New(env, ConvChainFree, "convChainFree"));
}

}  // namespace rn
