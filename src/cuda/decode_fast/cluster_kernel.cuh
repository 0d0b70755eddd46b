// decode_fast, pass 1 and merge in one launch (cluster kernel, sm90, 2..kMaxClusterSplits
// splits): the splits of one (sequence, KV head, row tile) run as one thread-block cluster. Each
// block computes its split like the split kernel (split_attention.cuh); then the blocks exchange
// their partial rows through distributed shared memory and merge them as MergeState does (the
// merge the combine kernel and the CPU backend use): no combine launch, no workspace round trip.
//
//   lse = log(sum_s exp(lse_s)),  out = sum_s exp(lse_s - lse) * o_s,  s over the cluster's splits
//
// Grid:    as the split kernel, blockIdx.x = split + num_splits * (row_tile + row_tiles * (h_kv +
//          heads_kv * b)); clusters of num_splits blocks along x, so a block's rank in its cluster
//          is its split.
// Block:   kWarps warps (kThreads threads).
// Shared memory (dynamic, SplitConfig::kClusterSmemBytes): the split kernel's layout, then the
//          inbox sInboxO [kInboxSlots][head_dim], sInboxLse [kInboxSlots] (float) and its mbarrier.
// Merge:   block `split` owns the rows with row % num_splits == split. Every block pushes its
//          merged row into the owner's inbox, slot src * per_owner + row / num_splits (src = the
//          pushing block's split, per_owner = ceil(kRows / num_splits)), with asynchronous stores
//          that complete on the owner's mbarrier; the owner, which announced the bytes of all its
//          rows from all splits, waits on it and merges its rows in split order (deterministic),
//          then writes out and lse.
// Sync:    cluster_arrive_relaxed at the start (after the mbarrier's initialisation) and
//          cluster_wait before the pushes: a block writes into a peer only once the peer has
//          started. No block exits while a peer may still write into it: a block's inbox is
//          written only by pushes it waits for. (Before: a second cluster barrier whose release
//          cost a GPU-scope memory fence, and a serial weight loop per row: docs/decode_fast.md.)
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "common/attention_math.h"
#include "common/problem.h"
#include "cuda/common/mma.cuh"
#include "cuda/decode_fast/block_work.cuh"
#include "cuda/decode_fast/cluster.cuh"
#include "cuda/decode_fast/config.h"
#include "cuda/decode_fast/split_attention.cuh"
#include "cuda/decode_fast/split_params.h"

namespace sfa::cuda::decode_fast {

template <typename Element, int kHeadDim, Variant kVariant>
__global__ void __launch_bounds__(SplitConfig<kHeadDim>::kThreads, SplitConfig<kHeadDim>::kBlocksPerSm)
    decode_fast_cluster_kernel(const SplitParams prm) {
  using Cfg = SplitConfig<kHeadDim>;
  const DecodeProblem& p = prm.p;
  extern __shared__ __align__(128) unsigned char smem[];
  float* sInboxO = reinterpret_cast<float*>(smem + Cfg::kSmemBytes);
  float* sInboxLse = sInboxO + kInboxSlots * kHeadDim;
  const uint32_t s_inbox_o = smem_address(sInboxO);
  const uint32_t s_inbox_lse = smem_address(sInboxLse);
  const uint32_t s_bar = smem_address(smem + Cfg::kInboxBarrierOffset);
  if (threadIdx.x == 0) mbarrier_init_for_cluster(s_bar);
  cluster_arrive_relaxed();  // this block has started: peers may push into its inbox after their wait
  BlockWork w = block_coords(prm, static_cast<int>(blockIdx.x));  // the launcher keeps the grid below 2^31
  attend_block<Element, Cfg, kVariant>(prm, w, smem);

  const int splits = p.num_splits;
  const int per_owner = prm.splits.div(kRowsPerBlock + splits - 1);
  const int tile_rows = min(kRowsPerBlock, w.rows - w.row_tile * kRowsPerBlock);  // stored rows of the tile
  auto owned = [&](int row) { return prm.splits.mod(row) == w.split && row < tile_rows; };
  if (threadIdx.x == 0) {
    // Every split pushes each owned row: head_dim floats of O and its lse.
    const int rows = tile_rows > w.split ? prm.splits.div(tile_rows - w.split + splits - 1) : 0;
    mbarrier_expect_bytes(s_bar, static_cast<uint32_t>(rows * splits) * Cfg::kInboxRowBytes);
  }
  cluster_wait();  // every block of the cluster has started (and initialised its mbarrier)
  // Push this block's merged rows to their owners.
  block_output<Cfg>(w, MergeSmem<Cfg>(smem), [&](int row, int col, float4 o, float lse) {
    const int local = prm.splits.div(row);  // the row's index among its owner's rows
    const int owner = row - local * splits;
    const int slot = w.split * per_owner + local;
    const uint32_t bar = cluster_map(s_bar, owner);
    st_async(cluster_map(s_inbox_o + (slot * kHeadDim + col) * sizeof(float), owner), o, bar);
    if (col == 0) st_async(cluster_map(s_inbox_lse + slot * sizeof(float), owner), lse, bar);
  });
  mbarrier_wait_first_phase(s_bar);  // every split's partial of this block's rows has landed

  // Per owned row and 4 columns: MergeState's merge in its all-at-once form, splits in order.
  constexpr int kQuads = kHeadDim / 4;
  for (int item = threadIdx.x; item < Cfg::kRows * kQuads; item += Cfg::kThreads) {
    const int row = item / kQuads;
    const int col = (item % kQuads) * 4;
    if (!owned(row)) continue;
    const int local = prm.splits.div(row);
    const float* lse_s = sInboxLse + local;                 // split src at lse_s[src * per_owner]
    const float* o_s = sInboxO + local * kHeadDim + col;    // split src at o_s[src * per_owner * d]
    float mx = -INFINITY;
#pragma unroll 4
    for (int src = 0; src < splits; ++src) mx = fmaxf(mx, lse_s[src * per_owner]);
    float sum = 0.0f;
    float4 o = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll 4
    for (int src = 0; src < splits; ++src) {
      const float e = MergeState::unnormalised_weight(lse_s[src * per_owner], mx);
      const float4 v = *reinterpret_cast<const float4*>(o_s + src * per_owner * kHeadDim);
      sum += e;
      o.x += e * v.x;
      o.y += e * v.y;
      o.z += e * v.z;
      o.w += e * v.w;
    }
    const float inv_sum = sum > 0.0f ? 1.0f / sum : 0.0f;
    int i, h;
    row_position(prm, w, row, &i, &h);
    Element* out = static_cast<Element*>(p.out) + w.b * p.out_stride.batch + i * p.out_stride.row +
                   h * p.out_stride.head + col;
    *reinterpret_cast<uint2*>(out) = make_uint2(pack_pair<Element>(o.x * inv_sum, o.y * inv_sum),
                                                pack_pair<Element>(o.z * inv_sum, o.w * inv_sum));
    if (col == 0 && p.lse != nullptr) {
      p.lse[w.b * p.lse_batch_stride + h * p.lse_head_stride + i] = MergeState::merged_lse(mx, sum);
    }
  }
}

}  // namespace sfa::cuda::decode_fast
