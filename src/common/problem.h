// The one flat parameter struct every backend receives after validation.
//
// src/api/validate.cpp fills it from the public argument structs; kernels read it and nothing
// else. Everything here has already been checked: shapes agree, strides fit, the last dimension
// is contiguous, the window has been resolved (causal folded into window_right = 0).
#pragma once

#include <cstdint>

#include "sfa/sfa.h"

namespace sfa {

// Element strides of a [batch, seqlen, heads, head_dim] tensor (last stride is 1).
// For varlen tensors batch_stride is 0 and a sequence starts at row cu_seqlens[b].
struct Strides {
  int64_t batch = 0;
  int64_t row = 0;
  int64_t head = 0;
};

struct AttentionProblem {
  DType dtype = DType::kFloat32;  // q, k, v, out

  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* out = nullptr;
  float* lse = nullptr;  // nullptr: not requested
  Strides q_stride, k_stride, v_stride, out_stride;
  // lse element (b, h, i) lives at lse[b * lse_batch_stride + h * lse_head_stride + row(i)],
  // row(i) = i for dense, cu_seqlens_q[b] + i for varlen (lse_batch_stride = 0).
  int64_t lse_batch_stride = 0;
  int64_t lse_head_stride = 0;

  int batch = 0;
  int heads = 0;
  int heads_kv = 0;
  int head_dim = 0;
  // Dense: every sequence's length. Varlen: the caller's max_seqlen_q / max_seqlen_k bounds
  // (each sequence's own length comes from cu_seqlens).
  int seqlen_q = 0;
  int seqlen_k = 0;

  // Varlen (nullptr for dense). Device memory for CUDA; kernels must treat a length outside
  // [0, seqlen_q/seqlen_k] or an offset past total_q/total_k as an empty sequence.
  const int32_t* cu_seqlens_q = nullptr;
  const int32_t* cu_seqlens_k = nullptr;
  int64_t total_q = 0;  // rows of packed q/out (varlen)
  int64_t total_k = 0;  // rows of packed k/v (varlen)

  float softmax_scale = 0.0f;  // resolved: never 0
  float softcap = 0.0f;        // 0: off
  bool causal = false;         // informational: window_right is already 0 when causal
  int64_t window_left = -1;    // -1: unbounded
  int64_t window_right = -1;   // -1: unbounded

  int heads_per_kv() const { return heads / heads_kv; }
};

struct DecodeProblem {
  DType dtype = DType::kFloat32;

  const void* q = nullptr;
  const void* k_cache = nullptr;
  const void* v_cache = nullptr;
  void* out = nullptr;
  float* lse = nullptr;
  Strides q_stride, k_stride, v_stride, out_stride;  // k/v: batch stride = page stride when paged
  int64_t lse_batch_stride = 0;
  int64_t lse_head_stride = 0;

  int batch = 0;
  int heads = 0;
  int heads_kv = 0;
  int head_dim = 0;
  int seqlen_q = 0;  // new tokens per sequence

  // Contiguous: capacity rows per sequence. Paged: page_size rows per page, num_pages pages,
  // block_table[b * block_table_stride + p] is the page holding positions [p*page_size, ...).
  int64_t capacity = 0;  // contiguous: rows; paged: max_pages_per_seq * page_size
  const int32_t* cache_seqlens = nullptr;  // nullptr: every sequence has `capacity` keys
  const int32_t* block_table = nullptr;    // nullptr: contiguous
  int64_t block_table_stride = 0;
  int page_size = 0;
  int64_t num_pages = 0;
  int max_pages_per_seq = 0;

  float softmax_scale = 0.0f;
  float softcap = 0.0f;
  int64_t window_left = -1;

  int num_splits = 1;  // resolved (>= 1)
  // Split-KV scratch (num_splits > 1): partial outputs float32 [num_splits, batch, seqlen_q, heads,
  // head_dim] followed by their LSE float32 [num_splits, batch, seqlen_q, heads].
  float* workspace_out = nullptr;
  float* workspace_lse = nullptr;

  bool paged() const { return block_table != nullptr; }
  int heads_per_kv() const { return heads / heads_kv; }
};

}  // namespace sfa
