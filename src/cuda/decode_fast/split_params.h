// decode_fast pass-1 kernel parameters: the problem and the divisors of its index arithmetic,
// prepared by the launcher so the kernels divide by a multiply and a shift. A 32-bit division by
// a runtime value is ~25 instructions, and the kernels run about ten of them before their first
// load, in code fetched cold after an L2 flush (docs/decode_fast.md).
#pragma once

#include <cstdint>

#include "common/problem.h"
#include "cuda/decode_fast/config.h"

namespace sfa::cuda::decode_fast {

// n / d and n % d for 0 <= n < 2^31 and a divisor 1 <= d <= 2^31 fixed at launch (round-up
// multiplier: q = (mulhi(n, m) + n) >> s with s = ceil(log2 d), m = 2^32 (2^s - d) / d + 1).
struct FastDivisor {
  uint32_t d = 1;
  uint32_t multiplier = 0;
  uint32_t shift = 0;

  FastDivisor() = default;
  explicit FastDivisor(int divisor) : d(static_cast<uint32_t>(divisor < 1 ? 1 : divisor)) {
    while (shift < 32 && (uint64_t{1} << shift) < d) ++shift;
    multiplier = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << shift) - d)) / d + 1);
  }
  SFA_DF_HOST_DEVICE int div(int n) const {
    const uint32_t u = static_cast<uint32_t>(n);
#if defined(__CUDA_ARCH__)
    const uint32_t hi = __umulhi(u, multiplier);
#else
    const uint32_t hi = static_cast<uint32_t>((static_cast<uint64_t>(u) * multiplier) >> 32);
#endif
    return static_cast<int>((hi + u) >> shift);
  }
  SFA_DF_HOST_DEVICE int mod(int n) const { return n - div(n) * static_cast<int>(d); }
  SFA_DF_HOST_DEVICE int value() const { return static_cast<int>(d); }
};

struct SplitParams {
  DecodeProblem p;
  FastDivisor splits;     // num_splits
  FastDivisor row_tiles;  // row tiles per (sequence, KV head)
  FastDivisor heads_kv;
  FastDivisor group;      // G: query heads per KV head
  FastDivisor page_size;  // paged: positions per page (1 when contiguous)
  // Paged: a page index i is valid when uint32_t(i) < page_limit (num_pages, capped at 2^31: then
  // every non-negative int is), one unsigned compare for 0 <= i < num_pages.
  uint32_t page_limit = 0;
  bool evict_first = false;     // stream K and V with the L2 evict-first policy (stream_copy.cuh)
  bool prefetch_start = false;  // prefetch the first tiles into L2 before the length arrives

  SplitParams() = default;
  explicit SplitParams(const DecodeProblem& problem)
      : p(problem),
        splits(problem.num_splits),
        row_tiles(ceil_div(static_cast<int64_t>(problem.heads / problem.heads_kv) * problem.seqlen_q, kRowsPerBlock)),
        heads_kv(problem.heads_kv),
        group(problem.heads / problem.heads_kv),
        page_size(problem.block_table != nullptr ? problem.page_size : 1),
        page_limit(static_cast<uint32_t>(problem.num_pages < 0 ? 0
                                         : problem.num_pages > (int64_t{1} << 31) ? (int64_t{1} << 31)
                                                                                   : problem.num_pages)) {}
};

}  // namespace sfa::cuda::decode_fast
