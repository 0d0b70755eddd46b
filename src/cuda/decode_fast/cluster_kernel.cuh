// decode_fast, pass 1 and merge in one launch (cluster kernel, sm90, 2..kMaxClusterSplits
// splits): the splits of one (sequence, KV head, row tile) run as one thread-block cluster. Each
// block computes its split like the split kernel (split_attention.cuh); then the blocks exchange
// their partial rows through distributed shared memory and merge them with MergeState, the merge
// the combine kernel and the CPU backend use: no combine launch, no workspace round trip.
//
//   lse = log(sum_s exp(lse_s)),  out = sum_s exp(lse_s - lse) * o_s,  s over the cluster's splits
//
// Grid:    as the split kernel, blockIdx.x = split + num_splits * (row_tile + row_tiles * (h_kv +
//          heads_kv * b)); clusters of num_splits blocks along x, so a block's rank in its cluster
//          is its split.
// Block:   kWarps warps (kThreads threads).
// Shared memory (dynamic, SplitConfig::kClusterSmemBytes): the split kernel's layout, then the
//          inbox sInboxO [kInboxSlots][head_dim], sInboxLse [kInboxSlots] (float).
// Merge:   block `split` owns the rows with row % num_splits == split. Every block pushes its
//          merged row into the owner's inbox, slot src * per_owner + row / num_splits (src = the
//          pushing block's split, per_owner = ceil(kRows / num_splits)); after the cluster barrier
//          the owner merges its rows in split order (deterministic) and writes out and lse.
// Barriers: cluster_arrive_relaxed at the start and cluster_wait before the pushes (a block
//          writes into a peer's shared memory only once the peer has started); cluster_arrive
//          after the pushes and cluster_wait before the merge (every push has landed, and no
//          block exits while a peer may still write into it: nothing is pushed after that).
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

template <typename Element, int kHeadDim>
__global__ void __launch_bounds__(SplitConfig<kHeadDim>::kThreads, SplitConfig<kHeadDim>::kBlocksPerSm)
    decode_fast_cluster_kernel(const SplitParams prm) {
  using Cfg = SplitConfig<kHeadDim>;
  const DecodeProblem& p = prm.p;
  extern __shared__ __align__(128) unsigned char smem[];
  cluster_arrive_relaxed();  // this block has started: peers may write into its inbox after their wait
  BlockWork w = block_coords(prm);
  attend_block<Element, Cfg>(prm, w, smem);

  const MergeSmem<Cfg> s(smem);
  const int splits = p.num_splits;
  const int per_owner = prm.splits.div(kRowsPerBlock + splits - 1);
  float* sInboxO = reinterpret_cast<float*>(smem + Cfg::kSmemBytes);
  float* sInboxLse = sInboxO + kInboxSlots * kHeadDim;
  const uint32_t s_inbox_o = smem_address(sInboxO);
  const uint32_t s_inbox_lse = smem_address(sInboxLse);

  cluster_wait();  // every block of the cluster has started
  // Push this block's merged rows to their owners.
  block_output<Cfg>(w, s, [&](int row, int col, float4 o) {
    const int local = prm.splits.div(row);  // the row's index among its owner's rows
    const int owner = row - local * splits;
    const int slot = w.split * per_owner + local;
    cluster_store(cluster_map(s_inbox_o + (slot * kHeadDim + col) * sizeof(float), owner), o);
    if (col == 0) cluster_store(cluster_map(s_inbox_lse + slot * sizeof(float), owner), s.sRowLse[row]);
  });
  cluster_arrive();  // release: this block's pushes are visible to their owners after their wait
  cluster_wait();    // every peer's partials of this block's rows are in the inbox

  // Per owned row: the splits' weights (into the merge area, free now: every thread of this block
  // finished reading it before it arrived) and the merged lse.
  float* sCW = s.sO;  // [kRows][kMaxClusterSplits]
  auto owned = [&](int row) { return prm.splits.mod(row) == w.split && w.row_tile * kRowsPerBlock + row < w.rows; };
  if (threadIdx.x < Cfg::kRows && owned(threadIdx.x)) {
    const int row = threadIdx.x;
    const float* lse_s = sInboxLse + prm.splits.div(row);  // split src at lse_s[src * per_owner]
    MergeState merge;
#pragma unroll 1
    for (int src = 0; src < splits; ++src) merge.add(lse_s[src * per_owner]);
#pragma unroll 1
    for (int src = 0; src < splits; ++src) sCW[row * kMaxClusterSplits + src] = merge.weight(lse_s[src * per_owner]);
    int i, h;
    row_position(prm, w, row, &i, &h);
    if (p.lse != nullptr) p.lse[w.b * p.lse_batch_stride + h * p.lse_head_stride + i] = merge.lse();
  }
  __syncthreads();  // the weights are visible to every thread

  // out = sum_s weight_s * o_s over the owned rows, 4 columns per item.
  constexpr int kQuads = kHeadDim / 4;
  for (int item = threadIdx.x; item < Cfg::kRows * kQuads; item += Cfg::kThreads) {
    const int row = item / kQuads;
    const int col = (item % kQuads) * 4;
    if (!owned(row)) continue;
    const float* o_s = sInboxO + prm.splits.div(row) * kHeadDim + col;  // split src at o_s[src * per_owner * d]
    float4 o = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll 4
    for (int src = 0; src < splits; ++src) {
      const float weight = sCW[row * kMaxClusterSplits + src];
      const float4 v = *reinterpret_cast<const float4*>(o_s + src * per_owner * kHeadDim);
      o.x += weight * v.x;
      o.y += weight * v.y;
      o.z += weight * v.z;
      o.w += weight * v.w;
    }
    int i, h;
    row_position(prm, w, row, &i, &h);
    Element* out = static_cast<Element*>(p.out) + w.b * p.out_stride.batch + i * p.out_stride.row +
                   h * p.out_stride.head + col;
    *reinterpret_cast<uint2*>(out) = make_uint2(pack_pair<Element>(o.x, o.y), pack_pair<Element>(o.z, o.w));
  }
}

}  // namespace sfa::cuda::decode_fast
