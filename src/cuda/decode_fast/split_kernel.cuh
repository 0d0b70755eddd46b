// decode_fast, pass 1 (split kernel): the attention of up to Br packed query rows against one
// split (a contiguous range of cache positions) of one sequence, for one KV head
// (split_attention.cuh). With one split the block writes out and lse; with more, its partial
// out + lse go to the workspace and the combine kernel (combine_kernel.cu) merges them. On sm90,
// up to kMaxClusterSplits splits run as clusters instead (cluster_kernel.cuh).
//
// Grid:  1-D, blockIdx.x = split + num_splits * (row_tile + row_tiles * (h_kv + heads_kv * b)).
//        (A persistent grid, 132 blocks looping over the items and prefetching the next item's
//        first tiles into L2, ran 7% slower at 512 items: docs/decode_fast.md.)
// Block: kWarps warps (kThreads threads).
// Shared memory (dynamic): SplitConfig::kSmemBytes, laid out in split_attention.cuh; a shallow
//        pipeline (kPipeline, config.h) for grids of several waves.
// Workspace (num_splits > 1): partial out float32 [num_splits, batch, seqlen_q, heads, head_dim]
// and lse float32 [num_splits, batch, seqlen_q, heads].
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "common/problem.h"
#include "cuda/common/dependent_launch.cuh"
#include "cuda/common/mma.cuh"
#include "cuda/decode_fast/block_work.cuh"
#include "cuda/decode_fast/config.h"
#include "cuda/decode_fast/split_attention.cuh"
#include "cuda/decode_fast/split_params.h"

namespace sfa::cuda::decode_fast {

template <typename Element, int kHeadDim, Variant kVariant, Pipeline kPipeline>
__global__ void __launch_bounds__(SplitConfig<kHeadDim, kPipeline>::kThreads,
                                  SplitConfig<kHeadDim, kPipeline>::kBlocksPerSm)
    decode_fast_split_kernel(const SplitParams prm) {
  using Cfg = SplitConfig<kHeadDim, kPipeline>;
  const DecodeProblem& p = prm.p;
  extern __shared__ __align__(128) unsigned char smem[];
  // The combine kernel (a programmatic dependent, sm90) may start launching at once: it waits
  // for this grid's completion before it reads the workspace.
  allow_dependent_launch();
  BlockWork w = block_coords(prm, static_cast<int>(blockIdx.x));  // the launcher keeps the grid below 2^31
  attend_block<Element, Cfg, kVariant>(prm, w, smem);
  block_output<Cfg>(w, MergeSmem<Cfg>(smem), [&](int row, int col, float4 o, float lse) {
    int i, h;
    row_position(prm, w, row, &i, &h);
    if (p.num_splits == 1) {
      Element* out = static_cast<Element*>(p.out) + w.b * p.out_stride.batch + i * p.out_stride.row +
                     h * p.out_stride.head + col;
      *reinterpret_cast<uint2*>(out) = make_uint2(pack_pair<Element>(o.x, o.y), pack_pair<Element>(o.z, o.w));
      if (col == 0 && p.lse != nullptr) p.lse[w.b * p.lse_batch_stride + h * p.lse_head_stride + i] = lse;
    } else {
      const int64_t ws_row = ((static_cast<int64_t>(w.split) * p.batch + w.b) * p.seqlen_q + i) * p.heads + h;
      *reinterpret_cast<float4*>(p.workspace_out + ws_row * kHeadDim + col) = o;
      if (col == 0) p.workspace_lse[ws_row] = lse;
    }
  });
}

}  // namespace sfa::cuda::decode_fast
