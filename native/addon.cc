// The addon's export table: each primitive family registers its functions, plus
// implInfo(kind, params), which names the oneDNN implementation (and chosen layouts) an op
// would run with, for tests that forbid ref/gemm kernels on hot layers.
#include "common.h"

#include <dlfcn.h>

namespace rn {

namespace {

// implInfo(kind, params) -> { impl, <arg>: format, ... }
Napi::Value ImplInfo(const Napi::CallbackInfo& info) {
  return guarded(info, "implInfo", [&]() -> Napi::Value {
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsObject())
      throw OpError("usage: implInfo(kind: string, params: object)");
    const std::string kind = info[0].As<Napi::String>().Utf8Value();
    const Napi::Object p = info[1].As<Napi::Object>();
    for (auto f : {convImplInfo, batchNormImplInfo, poolImplInfo, eltwiseImplInfo}) {
      Napi::Value v = f(info.Env(), kind, p);
      if (!v.IsEmpty()) return v;
    }
    throw OpError("unknown kind '" + kind + "'");
  });
}

// Pins this library (and with it oneDNN and libgomp) for the life of the process. Node
// unloads an addon loaded by a worker thread when that worker ends, but OpenMP's pool
// threads outlive it and would then run unmapped code: `resnet serve`, whose engine thread
// holds the addon, died of SIGSEGV in about one SIGTERM drain in four (bench/soak.ts; the
// core showed the faulting thread in a library no longer mapped). RTLD_NODELETE on our own
// handle makes the dlclose a no-op.
void pinLibrary() {
  Dl_info self;
  if (dladdr(reinterpret_cast<void*>(&pinLibrary), &self) != 0 && self.dli_fname != nullptr) {
    dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);  // a handle never closed: pinned
  }
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  pinLibrary();
  exportEngine(env, exports);  // first: engine, threads, FTZ/DAZ
  exportBuffers(env, exports);
  exportStorage(env, exports);
  exportConv(env, exports);
  exportChain(env, exports);
  exportBatchNorm(env, exports);
  exportPool(env, exports);
  exportEltwise(env, exports);
  exportBinary(env, exports);
  exportInnerProduct(env, exports);
  exportLoss(env, exports);
  exportSgd(env, exports);
  exportReduce(env, exports);
  exportDetect(env, exports);
  exportBench(env, exports);
  exports.Set("implInfo", Napi::Function::New(env, ImplInfo, "implInfo"));
  return exports;
}

}  // namespace

}  // namespace rn

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return rn::Init(env, exports); }

NODE_API_MODULE(resnet_native, InitAddon)
