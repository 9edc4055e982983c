// The buffer pool behind every storage, and the live-storage accounting. Freed buffers are
// kept by (rounded) size and handed out again, most recently freed first: a training step
// allocates the same sizes as the last one, and fresh pages would cost a page fault per
// 4 KiB (a conv output of 50 MB: ~10 ms, as long as the conv). A request from 64 KiB takes
// the smallest cached buffer that fits if it is at most a quarter larger (kFitSlackDiv),
// so sizes that vary a little between steps reuse memory too. Buffers from 4 MiB are 2 MiB
// aligned and advised for transparent huge pages. The pool is capped (RESNET_POOL_MB, default
// a quarter of RAM, at most 16 GiB), least recently freed out first; trimPool() empties it.
// One pool for the process, behind a mutex (JS threads running side by side share it: an
// uncontended lock is tens of ns against a buffer's microseconds of use); the live-storage
// accounting is per JS thread, as each reports to its own V8 isolate.
#include "common.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <list>
#include <map>
#include <mutex>

namespace rn {

namespace {

constexpr size_t kHugeFrom = size_t(4) << 20;   // buffers from 4 MiB: 2 MiB aligned, THP
constexpr size_t kPageFrom = size_t(64) << 10;  // buffers from 64 KiB: page aligned
// A request from 64 KiB may take a cached buffer up to a quarter larger: sizes that vary a
// little from step to step (a detector's sampled RoIs, images of different sizes) would
// otherwise never match, and each took fresh pages (a faster R-CNN training step: ~80 MB of
// page faults and zeroing a step, while the pool held GBs of near misses).
constexpr size_t kFitSlackDiv = 4;

struct Pool {
  struct Entry { size_t size; void* ptr; };
  std::list<Entry> lru;  // front = most recently freed
  // Ordered, for the best fit of a large request; a size with no buffer cached has no key.
  std::map<size_t, std::vector<std::list<Entry>::iterator>> bySize;
  // Large buffers handed out for a smaller request (best fit): their size, for poolFree.
  std::unordered_map<void*, size_t> lentLarger;
  size_t cachedBytes = 0;
  size_t capBytes = 0;
  // Since load: allocations served from the pool, and those that took fresh memory (each
  // fresh page costs a fault and the kernel zeroing it on first touch).
  uint64_t hits = 0, misses = 0, missBytes = 0;
};

Pool* gPool = nullptr;
std::mutex gPoolMutex;  // guards gPool and everything in it
// Per JS thread (its isolate's storages):
thread_local int64_t tLiveCount = 0;
thread_local int64_t tLiveBytes = 0;
thread_local int64_t tReportedBytes = 0;  // what V8 has been told (AdjustExternalMemory)
thread_local bool tDeferExternal = false;  // inside the outermost tidy(): see accountAlloc
thread_local bool tTearingDown = false;

void reportExternal(Napi::Env env) {
  if (tTearingDown || tLiveBytes == tReportedBytes) return;
  Napi::MemoryManagement::AdjustExternalMemory(env, tLiveBytes - tReportedBytes);
  tReportedBytes = tLiveBytes;
}

size_t roundSize(size_t bytes) {
  if (bytes < 64) return 64;
  if (bytes < kPageFrom) return (bytes + 63) & ~size_t(63);
  return (bytes + 4095) & ~size_t(4095);
}

Pool& pool() {  // callers hold gPoolMutex
  if (!gPool) {
    gPool = new Pool();
    size_t capMb = 0;
    if (const char* env = std::getenv("RESNET_POOL_MB")) capMb = std::strtoull(env, nullptr, 10);
    if (capMb > 0) {
      gPool->capBytes = capMb << 20;
    } else {
      const long pages = sysconf(_SC_PHYS_PAGES), pageSize = sysconf(_SC_PAGESIZE);
      const size_t phys = pages > 0 && pageSize > 0 ? size_t(pages) * size_t(pageSize) : size_t(8) << 30;
      gPool->capBytes = std::min(phys / 4, size_t(16) << 30);
    }
  }
  return *gPool;
}

void* rawAlloc(size_t size) {
  const size_t align = size >= kHugeFrom ? (size_t(2) << 20) : size >= kPageFrom ? 4096 : 64;
  void* p = std::aligned_alloc(align, (size + align - 1) / align * align);
  if (!p) throw std::bad_alloc();
  if (size >= kHugeFrom) madvise(p, size, MADV_HUGEPAGE);
  return p;
}

void evictTo(Pool& pl, size_t limit) {
  while (pl.cachedBytes > limit && !pl.lru.empty()) {
    auto last = std::prev(pl.lru.end());
    auto key = pl.bySize.find(last->size);
    auto& vec = key->second;
    vec.erase(std::find(vec.begin(), vec.end(), last));
    if (vec.empty()) pl.bySize.erase(key);
    pl.cachedBytes -= last->size;
    std::free(last->ptr);
    pl.lru.erase(last);
  }
}

}  // namespace

void* poolAlloc(size_t bytes) {
  const size_t size = roundSize(bytes);
  {
    std::lock_guard<std::mutex> lock(gPoolMutex);
    Pool& pl = pool();
    // Small: the exact size; large: the smallest cached size that fits within the slack.
    auto it = pl.bySize.lower_bound(size);
    const size_t most = size >= kPageFrom ? size + size / kFitSlackDiv : size;
    if (it != pl.bySize.end() && it->first <= most) {
      const size_t have = it->first;
      auto entry = it->second.back();
      it->second.pop_back();
      if (it->second.empty()) pl.bySize.erase(it);
      void* p = entry->ptr;
      pl.cachedBytes -= have;
      pl.lru.erase(entry);
      ++pl.hits;
      if (have != size) pl.lentLarger[p] = have;
      return p;
    }
    ++pl.misses;
    pl.missBytes += size;
  }
  return rawAlloc(size);
}

void poolFree(void* p, size_t bytes) {
  if (!p) return;
  size_t size = roundSize(bytes);
  std::lock_guard<std::mutex> lock(gPoolMutex);
  Pool& pl = pool();
  if (size >= kPageFrom && !pl.lentLarger.empty()) {
    auto l = pl.lentLarger.find(p);
    if (l != pl.lentLarger.end()) {
      size = l->second;
      pl.lentLarger.erase(l);
    }
  }
  if (size > pl.capBytes) { std::free(p); return; }
  pl.lru.push_front({size, p});
  pl.bySize[size].push_back(pl.lru.begin());
  pl.cachedBytes += size;
  evictTo(pl, pl.capBytes);
}

// V8 is told how many bytes live storages hold (AdjustExternalMemory), so that it collects
// dropped tensors; it starts a full mark-compact whenever that figure has grown by some tens
// of MB since the last one. Inside tidy() that is wasted: a step allocates and frees its
// activations (hundreds of MB) and V8 ran 2-3 mark-compacts a step (resnet20 b128: a
// concurrent marker on one of the two cores beside oneDNN's threads, and 1-3 ms pauses),
// yet nothing made inside a tidy can be collected before it ends (the scope holds it). So
// while the outermost tidy runs (deferExternalMemory(true), from src/backend/index.ts)
// changes are not reported, and on its end V8 learns the net change at once: leaks and
// keep()-ed tensors still count, transients never do.
void accountAlloc(Napi::Env env, int64_t bytes, int countDelta) {
  tLiveBytes += bytes;
  tLiveCount += countDelta;
  if (!tDeferExternal) reportExternal(env);
}

namespace {

// live() -> { count, bytes } of storages not yet freed (bytes include reordered copies)
Napi::Value Live(const Napi::CallbackInfo& info) {
  return guarded(info, "live", [&]() -> Napi::Value {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("count", static_cast<double>(tLiveCount));
    o.Set("bytes", static_cast<double>(tLiveBytes));
    return o;
  });
}

// poolStats() -> { cachedBytes, capBytes, hits, misses, missBytes, reportedBytes } (the last:
// live bytes as V8 was last told them, see accountAlloc); trimPool() frees every cached buffer
Napi::Value PoolStats(const Napi::CallbackInfo& info) {
  return guarded(info, "poolStats", [&]() -> Napi::Value {
    Napi::Object o = Napi::Object::New(info.Env());
    std::lock_guard<std::mutex> lock(gPoolMutex);
    o.Set("cachedBytes", static_cast<double>(pool().cachedBytes));
    o.Set("capBytes", static_cast<double>(pool().capBytes));
    o.Set("hits", static_cast<double>(pool().hits));
    o.Set("misses", static_cast<double>(pool().misses));
    o.Set("missBytes", static_cast<double>(pool().missBytes));
    o.Set("reportedBytes", static_cast<double>(tReportedBytes));
    return o;
  });
}

Napi::Value TrimPool(const Napi::CallbackInfo& info) {
  return guarded(info, "trimPool", [&]() -> Napi::Value {
    std::lock_guard<std::mutex> lock(gPoolMutex);
    evictTo(pool(), 0);
    return info.Env().Undefined();
  });
}

// deferExternalMemory(on): while on, storage allocations and frees are not reported to V8;
// turning it off reports the net change (see accountAlloc).
Napi::Value DeferExternalMemory(const Napi::CallbackInfo& info) {
  return guarded(info, "deferExternalMemory", [&]() -> Napi::Value {
    tDeferExternal = boolArg(info, 0, "on");
    if (!tDeferExternal) reportExternal(info.Env());
    return info.Env().Undefined();
  });
}

}  // namespace

void exportBuffers(Napi::Env env, Napi::Object exports) {
  // From here on this thread's isolate is going: storages it finalizes no longer report.
  env.AddCleanupHook([] { tTearingDown = true; });
  exports.Set("live", Napi::Function::New(env, Live, "live"));
  exports.Set("poolStats", Napi::Function::New(env, PoolStats, "poolStats"));
  exports.Set("trimPool", Napi::Function::New(env, TrimPool, "trimPool"));
  exports.Set("deferExternalMemory", Napi::Function::New(env, DeferExternalMemory, "deferExternalMemory"));
}

}  // namespace rn
