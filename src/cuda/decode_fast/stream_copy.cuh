// Copies of data read once (the KV cache in a decode step) that can leave the L2 cache to the data
// around them: cp.async with an L2 cache policy (sm80+). Evict-first makes a streamed line the
// first candidate for eviction in its set, so the stream recycles a small part of L2 instead of
// evicting everything else there (in a decode step: what the previous kernels wrote and the next
// ones read; after a benchmark's L2 flush: the flush's dirty lines, whose write-back would
// otherwise share DRAM bandwidth with the stream). Measured on the H100 (docs/decode_fast.md):
// 6-11% faster at 34-134 MB of K+V, 1-4% slower from 537 MB (the launcher picks:
// SplitParams::evict_first).
#pragma once

#include <cstdint>

namespace sfa::cuda::decode_fast {

// The cache policy operand of cp.async: L2 evict-first for every line it touches, or the default
// (evict-normal).
__device__ __forceinline__ uint64_t stream_policy(bool evict_first) {
  uint64_t first, normal;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(first));
  asm volatile("createpolicy.fractional.L2::evict_normal.b64 %0, 1.0;\n" : "=l"(normal));
  return evict_first ? first : normal;
}

// cp.async of 16 bytes (.cg, bypassing L1) under `policy`; when `valid` is false nothing is read
// (src is not dereferenced) and the 16 bytes are zero-filled.
__device__ __forceinline__ void cp_async_16_stream(uint32_t dst, const void* src, bool valid, uint64_t policy) {
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2, %3;\n" ::"r"(dst), "l"(src),
               "r"(src_bytes), "l"(policy));
}

}  // namespace sfa::cuda::decode_fast
