// Where sequence b of a (possibly packed) attention problem lives, with cu_seqlens guarded.
#pragma once

#include <cstdint>

#include "common/problem.h"

namespace sfa::cuda {

struct SequenceView {
  int64_t q_offset = 0;  // first row of the sequence in packed q/out (0 for dense batches)
  int64_t k_offset = 0;  // first row in packed k/v
  int len_q = 0;
  int len_k = 0;
};

// Rows [cu[b], cu[b + 1]) of a packed tensor with `total` rows; a span that is negative, runs
// past `total` or is longer than `max_len` is treated as empty (untrusted device data).
__device__ __forceinline__ int packed_span(const int32_t* cu, int b, int64_t total, int max_len,
                                           int64_t* offset) {
  const int64_t start = cu[b];
  const int64_t end = cu[b + 1];
  if (start < 0 || end < start || end > total || end - start > max_len) {
    *offset = 0;
    return 0;
  }
  *offset = start;
  return static_cast<int>(end - start);
}

__device__ __forceinline__ SequenceView sequence_view(const AttentionProblem& p, int b) {
  SequenceView s;
  if (p.cu_seqlens_q == nullptr) {
    s.len_q = p.seqlen_q;
    s.len_k = p.seqlen_k;
    return s;
  }
  s.len_q = packed_span(p.cu_seqlens_q, b, p.total_q, p.seqlen_q, &s.q_offset);
  s.len_k = packed_span(p.cu_seqlens_k, b, p.total_k, p.seqlen_k, &s.k_offset);
  return s;
}

}  // namespace sfa::cuda
