// FlashAttention-1 keeps O, l and m in global memory between iterations of its outer (K/V) loop.
// They live in the caller's workspace (sized by attention_workspace_size()), float32:
//   O [heads, rows, head_dim] | m [heads, rows] | l [heads, rows]
// with rows = batch * seqlen_q (dense) or total_q (varlen): the packed query rows.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/problem.h"

namespace sfa::cuda {

struct Fa1Scratch {
  float* o = nullptr;
  float* m = nullptr;
  float* l = nullptr;
  int64_t rows = 0;
};

constexpr size_t kFa1ScratchAlign = 256;

inline int64_t fa1_scratch_rows(const AttentionProblem& p) {
  return p.cu_seqlens_q != nullptr ? p.total_q : static_cast<int64_t>(p.batch) * p.seqlen_q;
}

inline size_t fa1_align(size_t n) { return (n + kFa1ScratchAlign - 1) / kFa1ScratchAlign * kFa1ScratchAlign; }

inline size_t fa1_scratch_bytes(const AttentionProblem& p) {
  const size_t cells = static_cast<size_t>(fa1_scratch_rows(p)) * p.heads;
  return fa1_align(cells * p.head_dim * sizeof(float)) + 2 * fa1_align(cells * sizeof(float));
}

inline Fa1Scratch fa1_bind_scratch(const AttentionProblem& p, void* workspace) {
  const int64_t rows = fa1_scratch_rows(p);
  const size_t cells = static_cast<size_t>(rows) * p.heads;
  char* base = static_cast<char*>(workspace);
  Fa1Scratch s;
  s.rows = rows;
  s.o = reinterpret_cast<float*>(base);
  s.m = reinterpret_cast<float*>(base + fa1_align(cells * p.head_dim * sizeof(float)));
  s.l = reinterpret_cast<float*>(base + fa1_align(cells * p.head_dim * sizeof(float)) +
                                 fa1_align(cells * sizeof(float)));
  return s;
}

}  // namespace sfa::cuda
