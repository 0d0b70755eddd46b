// decode_fast, pass 2 (combine kernel): merges the num_splits partial results of every output
// row into out (and lse), with the same MergeState the CPU backend uses.
//
//   lse = log(sum_s exp(lse_s)),  out = sum_s exp(lse_s - lse) * o_s   (attention_math.h)
//
// Input: the workspace of the split kernel, partial out float32 [num_splits, rows, head_dim] and
// partial lse float32 [num_splits, rows], rows = batch * seqlen_q * heads in (b, i, h) order.
// Grid:  1-D, ceil(rows / kWarps) blocks; one warp per row.
// Block: kWarps warps. Each lane owns columns 4 * (lane + 32 k) .. + 3 of its row.
// Shared memory (static): sLse [kWarps][kMaxSplits], the row's split LSEs for all lanes.
// Launched as a programmatic dependent of the split kernel on sm90+: it starts while the split
// kernel finishes and waits (wait_for_prior_grid) before reading the workspace.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "common/attention_math.h"
#include "cuda/common/check.cuh"
#include "cuda/common/dependent_launch.cuh"
#include "cuda/decode_fast/launch.h"
#include "cuda/common/mma.cuh"

namespace sfa::cuda::decode_fast {
namespace {

// Splits whose partial rows a lane loads before it accumulates them: the loads are L2 hits whose
// latency, not bandwidth, bounds this kernel, so they go out together.
constexpr int kSplitBatch = 8;

template <typename Element>
__global__ void __launch_bounds__(CombineConfig::kThreads) decode_fast_combine_kernel(const DecodeProblem p) {
  __shared__ float sLse[CombineConfig::kWarps][kMaxSplits];
  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  const int64_t rows = static_cast<int64_t>(p.batch) * p.seqlen_q * p.heads;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * CombineConfig::kWarps + warp;
  wait_for_prior_grid();  // the split kernel's partial results are complete and visible
  if (row >= rows) return;

  float* s_lse = sLse[warp];
  for (int s = lane; s < p.num_splits; s += kWarpSize) s_lse[s] = p.workspace_lse[s * rows + row];
  __syncwarp();  // the row's split LSEs are visible to every lane of the warp

  // Pass 1: the merged lse (every lane computes it; num_splits is small).
  MergeState merge;
  for (int s = 0; s < p.num_splits; ++s) merge.add(s_lse[s]);

  // Pass 2: out = sum_s weight_s * o_s. Empty splits have weight 0 and a zero partial row.
  for (int col = 4 * lane; col < p.head_dim; col += 4 * kWarpSize) {
    const float* partial = p.workspace_out + row * p.head_dim + col;
    const int64_t split_stride = rows * p.head_dim;
    float4 o = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    for (int s0 = 0; s0 < p.num_splits; s0 += kSplitBatch) {
      float4 os[kSplitBatch];
#pragma unroll
      for (int u = 0; u < kSplitBatch; ++u) {
        os[u] = s0 + u < p.num_splits ? *reinterpret_cast<const float4*>(partial + (s0 + u) * split_stride)
                                      : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      }
#pragma unroll
      for (int u = 0; u < kSplitBatch; ++u) {
        const float weight = s0 + u < p.num_splits ? merge.weight(s_lse[s0 + u]) : 0.0f;
        o.x += weight * os[u].x;
        o.y += weight * os[u].y;
        o.z += weight * os[u].z;
        o.w += weight * os[u].w;
      }
    }
    const int h = static_cast<int>(row % p.heads);
    const int i = static_cast<int>((row / p.heads) % p.seqlen_q);
    const int b = static_cast<int>(row / (static_cast<int64_t>(p.heads) * p.seqlen_q));
    Element* out = static_cast<Element*>(p.out) + b * p.out_stride.batch + i * p.out_stride.row +
                   h * p.out_stride.head + col;
    *reinterpret_cast<uint2*>(out) = make_uint2(pack_pair<Element>(o.x, o.y), pack_pair<Element>(o.z, o.w));
  }
  if (lane == 0 && p.lse != nullptr) {
    const int h = static_cast<int>(row % p.heads);
    const int i = static_cast<int>((row / p.heads) % p.seqlen_q);
    const int b = static_cast<int>(row / (static_cast<int64_t>(p.heads) * p.seqlen_q));
    p.lse[b * p.lse_batch_stride + h * p.lse_head_stride + i] = merge.lse();
  }
}

}  // namespace

Status launch_combine(const DecodeProblem& p, const DeviceInfo& info, cudaStream_t stream) {
  const int64_t rows = static_cast<int64_t>(p.batch) * p.seqlen_q * p.heads;
  const int64_t blocks = (rows + CombineConfig::kWarps - 1) / CombineConfig::kWarps;
  if (blocks > INT32_MAX) {
    return Status(StatusCode::kUnsupported, "kernel 'decode_fast': " + std::to_string(rows) +
                                                " output rows exceed the combine kernel's grid");
  }
  auto kernel = p.dtype == DType::kFloat16 ? decode_fast_combine_kernel<__half>
                                           : decode_fast_combine_kernel<__nv_bfloat16>;
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>(blocks));
  config.blockDim = dim3(CombineConfig::kThreads);
  config.dynamicSmemBytes = 0;
  config.stream = stream;
  // Programmatic dependent launch (sm90+): overlap this launch with the split kernel's tail.
  cudaLaunchAttribute attribute = {};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  if (info.sm_arch() >= kDependentLaunchMinSm) {
    config.attrs = &attribute;
    config.numAttrs = 1;
  }
  SFA_CUDA_TRY(cudaLaunchKernelEx(&config, kernel, p));
  return check_launch("decode_fast combine kernel");
}

}  // namespace sfa::cuda::decode_fast
