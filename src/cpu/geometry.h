// Where a sequence's rows live, for the CPU kernels: one formula for dense and packed (varlen)
// tensors, and the decode cache (contiguous or paged). Untrusted lengths, offsets and pages are
// clipped here so no kernel reads outside its tensors.
#pragma once

#include <cstdint>
#include <cstring>

#include "common/dtype_convert.h"
#include "common/problem.h"

namespace sfa::cpu {

// Element offset of (batch b, row, head h) in a [batch, seqlen, heads, head_dim] tensor, or of
// packed row `row` when the batch stride is 0 (varlen).
inline int64_t row_offset(const Strides& s, int64_t b, int64_t row, int64_t h) {
  return b * s.batch + row * s.row + h * s.head;
}

// One sequence of an attention problem: its first packed row (0 for dense) and lengths.
struct Sequence {
  int64_t q_row0 = 0, k_row0 = 0;
  int64_t lq = 0, lk = 0;
};

// A varlen sequence whose offsets or length fall outside the bounds is treated as empty.
inline Sequence attention_sequence(const AttentionProblem& p, int64_t b) {
  Sequence s;
  if (p.cu_seqlens_q == nullptr) {
    s.lq = p.seqlen_q;
    s.lk = p.seqlen_k;
    return s;
  }
  const int64_t q0 = p.cu_seqlens_q[b], q1 = p.cu_seqlens_q[b + 1];
  const int64_t k0 = p.cu_seqlens_k[b], k1 = p.cu_seqlens_k[b + 1];
  if (q0 >= 0 && q1 >= q0 && q1 - q0 <= p.seqlen_q && q1 <= p.total_q) {
    s.q_row0 = q0;
    s.lq = q1 - q0;
  }
  if (k0 >= 0 && k1 >= k0 && k1 - k0 <= p.seqlen_k && k1 <= p.total_k) {
    s.k_row0 = k0;
    s.lk = k1 - k0;
  }
  return s;
}

// lse element of (b, h, query i of the sequence starting at packed row q_row0).
inline int64_t lse_offset(int64_t batch_stride, int64_t head_stride, int64_t b, int64_t h, int64_t row) {
  return b * batch_stride + h * head_stride + row;
}

// Keys in the cache of decode sequence b: cache_seqlens[b] (the capacity when absent), 0 when
// out of [0, capacity], and cut at the first page outside the pool.
inline int64_t decode_length(const DecodeProblem& p, int64_t b) {
  int64_t n = p.cache_seqlens != nullptr ? p.cache_seqlens[b] : p.capacity;
  if (n < 0 || n > p.capacity) return 0;
  if (p.paged()) {
    const int64_t pages = (n + p.page_size - 1) / p.page_size;
    for (int64_t pg = 0; pg < pages; ++pg) {
      const int64_t page = p.block_table[b * p.block_table_stride + pg];
      if (page < 0 || page >= p.num_pages) return pg * p.page_size;
    }
  }
  return n;
}

// Element offset of cache position j < decode_length(p, b) of sequence b, head h_kv, in a cache
// tensor with strides s (k or v). Paged: row j % page_size of page block_table[b][j / page_size].
inline int64_t cache_offset(const DecodeProblem& p, const Strides& s, int64_t b, int64_t j, int64_t h_kv) {
  if (!p.paged()) return row_offset(s, b, j, h_kv);
  const int64_t page = p.block_table[b * p.block_table_stride + j / p.page_size];
  return row_offset(s, page, j % p.page_size, h_kv);
}

// n contiguous elements at base[offset] as float (exact for every input dtype).
inline void load_row(const void* base, DType dtype, int64_t offset, int n, float* dst) {
  switch (dtype) {
    case DType::kFloat16: {
      const uint16_t* src = static_cast<const uint16_t*>(base) + offset;
      for (int i = 0; i < n; ++i) dst[i] = half_bits_to_float(src[i]);
      break;
    }
    case DType::kBFloat16: {
      const uint16_t* src = static_cast<const uint16_t*>(base) + offset;
      for (int i = 0; i < n; ++i) dst[i] = bf16_bits_to_float(src[i]);
      break;
    }
    default:
      std::memcpy(dst, static_cast<const float*>(base) + offset, sizeof(float) * n);
      break;
  }
}

// Stores n floats at base[offset], rounded to nearest even in the dtype.
inline void store_row(void* base, DType dtype, int64_t offset, int n, const float* src) {
  switch (dtype) {
    case DType::kFloat16: {
      uint16_t* dst = static_cast<uint16_t*>(base) + offset;
      for (int i = 0; i < n; ++i) dst[i] = float_to_half_bits(src[i]);
      break;
    }
    case DType::kBFloat16: {
      uint16_t* dst = static_cast<uint16_t*>(base) + offset;
      for (int i = 0; i < n; ++i) dst[i] = float_to_bf16_bits(src[i]);
      break;
    }
    default:
      std::memcpy(static_cast<float*>(base) + offset, src, sizeof(float) * n);
      break;
  }
}

}  // namespace sfa::cpu
