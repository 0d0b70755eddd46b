// Standard attention, step 2 of 3: P = softmax(S) row by row, over the scores the first GEMM
// wrote (already multiplied by softmax_scale). Applies softcap and the mask here (the GEMM
// computed every score, as a framework does), writes P in its storage type and the row's lse.
//
//   pass 1: m = max_j s_j, l = sum_j exp(s_j - m)   (online per lane, then merged across the warp)
//   pass 2: P_j = exp(s_j - m) / l for visible j, 0 elsewhere;  lse = m + log(l)
// Scores are taken to the log2 domain (s * log2 e) as in the flash kernels.
//
// Grid: one warp per score row (t, i), t = b * heads + h; kWarps rows per block. Each lane reads
// float4 vectors lane, lane + 32, ... of the row (the row pitch is a multiple of 4 floats). For a
// float32 problem P overwrites S in place: each lane reads a vector before writing it.
#include "common/attention_math.h"
#include "cuda/common/check.cuh"
#include "cuda/common/simt.cuh"
#include "cuda/standard/standard.h"

namespace sfa::cuda {
namespace {

using namespace simt;

constexpr int kWarps = 8;

// The four log2-domain scores of vector vec (columns 4 vec .. 4 vec + 3), -inf where invisible.
__device__ __forceinline__ void load_scores(const float* row, int64_t vec, KeyRange range, float softcap,
                                            float (&x)[4]) {
  const float4 s = *reinterpret_cast<const float4*>(row + 4 * vec);
  const float raw[4] = {s.x, s.y, s.z, s.w};
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const int64_t j = 4 * vec + e;
    x[e] = j >= range.lo && j < range.hi ? apply_softcap(raw[e], softcap) * kLog2e : -INFINITY;
  }
}

template <typename TP>
__global__ void __launch_bounds__(kWarps * kWarpSize)
    standard_softmax_kernel(const AttentionProblem p, const float* s, int64_t ld_s, TP* pbuf, int64_t ld_p,
                            bool zero_out) {
  const int64_t rows = static_cast<int64_t>(p.batch) * p.heads * p.seqlen_q;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / kWarpSize;
  if (row >= rows) return;  // no barrier in this kernel
  const int lane = threadIdx.x % kWarpSize;
  const int i = row % p.seqlen_q;
  const int64_t t = row / p.seqlen_q, b = t / p.heads, h = t % p.heads;
  const KeyRange range = visible_keys(i, p.seqlen_q, p.seqlen_k, p.window_left, p.window_right);
  const float* srow = s + row * ld_s;
  const int64_t vecs = (p.seqlen_k + 3) / 4;

  // Pass 1: this lane's running max and sum, then the warp's.
  OnlineSoftmax st;
  if (!range.empty()) {
    for (int64_t vec = range.lo / 4 + lane; vec < (range.hi + 3) / 4; vec += kWarpSize) {
      float x[4];
      load_scores(srow, vec, range, p.softcap, x);
      st.rescale(fmaxf(fmaxf(x[0], x[1]), fmaxf(x[2], x[3])));
#pragma unroll
      for (int e = 0; e < 4; ++e) st.l += st.prob(x[e]);
    }
  }
  const float m = group_max<kWarpSize>(st.m);
  const float l = group_sum<kWarpSize>(st.m == -INFINITY ? 0.0f : st.l * exp2f(st.m - m));
  const float inv_l = l > 0.0f ? 1.0f / l : 0.0f;

  // Pass 2: P over the whole row (zeros outside the visible keys).
  TP* prow = pbuf + row * ld_p;
  for (int64_t vec = lane; vec < vecs; vec += kWarpSize) {
    float x[4];
    load_scores(srow, vec, range, p.softcap, x);
#pragma unroll
    for (int e = 0; e < 4; ++e) x[e] = m == -INFINITY ? 0.0f : exp2f(x[e] - m) * inv_l;
    store_vec<4>(prow + 4 * vec, x);
  }
  if (lane == 0 && p.lse != nullptr) {
    p.lse[b * p.lse_batch_stride + h * p.lse_head_stride + i] = l > 0.0f ? (m + log2f(l)) * kLn2 : -INFINITY;
  }
  if (zero_out) {
    TP* orow = static_cast<TP*>(p.out) + b * p.out_stride.batch + i * p.out_stride.row + h * p.out_stride.head;
    const float zeros[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int c = 4 * lane; c < p.head_dim; c += 4 * kWarpSize) store_vec<4>(orow + c, zeros);
  }
}

template <typename TP>
Status launch_typed(const AttentionProblem& p, const float* s, int64_t ld_s, void* pbuf, int64_t ld_p,
                    bool zero_out, cudaStream_t stream) {
  const int64_t rows = static_cast<int64_t>(p.batch) * p.heads * p.seqlen_q;
  const int64_t blocks = (rows + kWarps - 1) / kWarps;
  if (blocks > INT32_MAX) {
    return Status(StatusCode::kUnsupported, "kernel 'standard': batch * heads * seqlen_q too large");
  }
  standard_softmax_kernel<TP><<<static_cast<unsigned>(blocks), kWarps * kWarpSize, 0, stream>>>(
      p, s, ld_s, static_cast<TP*>(pbuf), ld_p, zero_out);
  return check_launch("standard_softmax_kernel");
}

}  // namespace

Status launch_standard_softmax(const AttentionProblem& p, const float* s, int64_t ld_s, void* pbuf,
                               int64_t ld_p, bool zero_out, cudaStream_t stream) {
  return dispatch_dtype(p.dtype, [&](auto type) {
    return launch_typed<typename decltype(type)::type>(p, s, ld_s, pbuf, ld_p, zero_out, stream);
  });
}

}  // namespace sfa::cuda
