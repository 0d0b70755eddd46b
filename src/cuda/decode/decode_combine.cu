// Flash-Decoding's combine: merge the num_splits partial results of each query row.
//
//   LSE = log sum_s exp(LSE_s);   O = sum_s exp(LSE_s - LSE) O_s
// computed with MergeState (common/attention_math.h), the same merge the CPU backend uses: one
// pass over the splits' LSE for the maximum and the rescaled sum, then the weighted sum of the
// partial outputs. A split that saw no key has LSE_s = -inf and weight 0; a row with no key at
// all gets out = 0 and lse = -inf.
//
// Grid: one warp per query row (b, i, h), kWarps rows per block, blockIdx.x = row / kWarps.
// Each lane owns 16-byte vectors lane, lane + 32, ... of the row (float4 partial outputs in,
// one vector store of 4 elements out). No shared memory, no barrier.
#include "common/attention_math.h"
#include "cuda/common/check.cuh"
#include "cuda/common/simt.cuh"
#include "cuda/decode/decode_combine.h"

namespace sfa::cuda {
namespace {

using namespace simt;

constexpr int kWarps = 8;

template <typename T>
__global__ void __launch_bounds__(kWarps * kWarpSize) decode_combine_kernel(const DecodeProblem p) {
  // rows < 2^31: the split kernel launched num_splits * rows blocks (launch_decode checks that),
  // so the row arithmetic is 32-bit (64-bit division is a slow subroutine with a stack frame).
  const int rows = p.batch * p.seqlen_q * p.heads;
  const int row = blockIdx.x * kWarps + threadIdx.x / kWarpSize;
  if (row >= rows) return;
  const int lane = threadIdx.x % kWarpSize;
  const int h = row % p.heads;
  const int i = (row / p.heads) % p.seqlen_q;
  const int64_t b = row / p.heads / p.seqlen_q;

  MergeState merge;
  for (int s = 0; s < p.num_splits; ++s) merge.add(p.workspace_lse[static_cast<int64_t>(s) * rows + row]);

  T* gout = static_cast<T*>(p.out) + b * p.out_stride.batch + i * p.out_stride.row + h * p.out_stride.head;
  for (int vec = lane; vec < p.head_dim / 4; vec += kWarpSize) {
    float o[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int s = 0; s < p.num_splits; ++s) {
      const int64_t part_row = static_cast<int64_t>(s) * rows + row;
      const float weight = merge.weight(p.workspace_lse[part_row]);
      if (weight == 0.0f) continue;  // an empty split: its partial output adds nothing
      const float4 part = *reinterpret_cast<const float4*>(p.workspace_out + part_row * p.head_dim + 4 * vec);
      o[0] = fmaf(weight, part.x, o[0]);
      o[1] = fmaf(weight, part.y, o[1]);
      o[2] = fmaf(weight, part.z, o[2]);
      o[3] = fmaf(weight, part.w, o[3]);
    }
    store_vec<4>(gout + 4 * vec, o);
  }
  if (lane == 0 && p.lse != nullptr) p.lse[b * p.lse_batch_stride + h * p.lse_head_stride + i] = merge.lse();
}

}  // namespace

Status launch_decode_combine(const DecodeProblem& p, cudaStream_t stream) {
  const int64_t rows = static_cast<int64_t>(p.batch) * p.seqlen_q * p.heads;
  const int64_t blocks = (rows + kWarps - 1) / kWarps;
  return dispatch_dtype(p.dtype, [&](auto type) {
    decode_combine_kernel<typename decltype(type)::type>
        <<<static_cast<unsigned>(blocks), kWarps * kWarpSize, 0, stream>>>(p);
    return check_launch("decode_combine_kernel");
  });
}

}  // namespace sfa::cuda
