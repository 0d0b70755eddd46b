// decode_fast: the attention of one block of either pass-1 kernel (split_kernel.cuh and, on
// sm90, cluster_kernel.cuh): up to Br packed query rows against one split of one sequence, for
// one KV head, ending with the block's merged result per row in shared memory.
//
// Paper -> code (Flash-Decoding on top of FlashAttention-2):
//   Br = kRows = 16 query rows per block. The G = heads / heads_kv query heads that read KV head
//        h_kv, times the seqlen_q new tokens, are packed as row r = i * G + (h - h_kv * G), so K
//        and V are read once for all of them (GQA / MQA packing). More than 16 rows use several
//        row tiles, each reading the split again (from L2 when the tiles run together).
//   Bc = kBlockN = 16 keys per warp tile. A split's tiles are dealt round-robin to the warps,
//        each warp with its own online softmax (m, l) and accumulator O, so the main loop has
//        no block-wide barrier.
//   S = Q K^T and O += P V run on tensor cores (mma.m16n8k16, float32 accumulation); the
//        softmax is float32 in the base-2 domain (OnlineSoftmax, common/attention_math.h).
//   The warps' (O / l, lse) meet in shared memory after the block's one barrier; block_output()
//   merges them per row (the MergeState merge, every warp's weight at once from the row's warp
//   lse in registers) and hands each row's merged O and lse to the kernel.
// The block's key ranges come from block_work.cuh, the tile copies from kv_loader.cuh.
//
// Shared memory (the kernel's dynamic smem, SplitConfig::kSmemBytes from its start):
//   main loop: per warp, kStages stages of [K tile | V tile], each kBlockN x head_dim 16-bit
//              values; a row's 16-byte chunk c is stored at chunk c ^ (row % 8), which makes the
//              ldmatrix reads of 8 rows conflict-free;
//   epilogue:  each warp's own stages reused as its normalised O rows sO [kRows][head_dim + 8]
//              (float; warp wp's at sO + wp * kMergeWarpStride), written as soon as the warp's
//              last tile is consumed;
//   always:    per (warp, stage) a 32-bit mask of tile keys whose page index was out of range;
//              then each warp's lse per row, sLse [kRows][kWarps].
// Variants (config.h, VariantTraits): the common decode step on a contiguous cache or on pages of
// whole tiles compiles without the softcap and the other loaders (the code is fetched cold after
// every L2 flush).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "common/attention_math.h"
#include "common/problem.h"
#include "cuda/common/cp_async.cuh"
#include "cuda/common/fast_math.cuh"
#include "cuda/common/mma.cuh"
#include "cuda/decode_fast/block_work.cuh"
#include "cuda/decode_fast/config.h"
#include "cuda/decode_fast/kv_loader.cuh"
#include "cuda/decode_fast/split_params.h"

namespace sfa::cuda::decode_fast {

// The epilogue's views of shared memory.
template <typename Cfg>
struct MergeSmem {
  float* sO;    // [kWarps][kRows][kMergeRowStride], warp stride kMergeWarpStride: each warp's O / l
  float* sLse;  // [kRows][kWarps]: each warp's lse of each row
  __device__ __forceinline__ explicit MergeSmem(unsigned char* smem)
      : sO(reinterpret_cast<float*>(smem)), sLse(reinterpret_cast<float*>(smem + Cfg::kDataBytes + Cfg::kMaskBytes)) {}
};

// A's fragments of S = Q K^T for this thread's rows g and g + 8, loaded once. Rows past the
// packed rows are zero (their results are never stored).
template <typename Element, typename Cfg>
__device__ __forceinline__ void load_q(const SplitParams& prm, const BlockWork& w, int lane,
                                       FragA (&rQ)[Cfg::kKSteps]) {
  const DecodeProblem& p = prm.p;
  const Element* q_rows[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int row = lane / 4 + 8 * half;
    int i, h;
    row_position(prm, w, row, &i, &h);
    q_rows[half] = w.row_tile * kRowsPerBlock + row < w.rows
                       ? static_cast<const Element*>(p.q) + w.b * p.q_stride.batch + i * p.q_stride.row +
                             h * p.q_stride.head
                       : nullptr;
  }
  const int col = 2 * (lane % 4);
#pragma unroll
  for (int kk = 0; kk < Cfg::kKSteps; ++kk) {
#pragma unroll
    for (int reg = 0; reg < 4; ++reg) {  // a0: (g, col) a1: (g+8, col) a2: (g, col+8) a3: (g+8, col+8)
      const Element* row = q_rows[reg % 2];
      rQ[kk].x[reg] = row ? *reinterpret_cast<const uint32_t*>(row + 16 * kk + col + 8 * (reg / 2)) : 0u;
    }
  }
}

// Keys row `g` (rows[0]) and row `g + 8` (rows[1]) of this thread see, within the split.
struct ThreadRows {
  int lo[2], hi[2];
};

// One warp tile: S = Q K^T, mask, online softmax, O += P V. k_rel / v_rel: the lane's ldmatrix
// addresses into a stage's K and V tile, relative to the stage at s_stage.
template <typename Element, typename Cfg, Variant kVariant>
__device__ __forceinline__ void attend_tile(const DecodeProblem& p, const BlockWork& w,
                                            const ThreadRows& rows, int lane, int key0,
                                            uint32_t s_stage, const LdmatrixBases<KvTile<Cfg>>& k_rel,
                                            const LdmatrixBases<KvTile<Cfg>>& v_rel, uint32_t bad_page,
                                            const FragA (&rQ)[Cfg::kKSteps],
                                            OnlineSoftmax (&softmax)[2],
                                            FragC (&rO)[Cfg::kONTiles]) {
  // S = Q K^T: keys key0..+7 in rS[0], key0+8..+15 in rS[1]. K row (lane/16)*8 + lane%8 and
  // chunk pair (lane/8)%2 give b0, b1 of both key groups in one ldmatrix.x4.
  FragC rS[2] = {};
  const LdmatrixBases<KvTile<Cfg>> k_addr = k_rel.shifted(s_stage);  // K row (lane/16)*8 + lane%8, chunk (lane/8)%2
#pragma unroll
  for (int kk = 0; kk < Cfg::kKSteps; ++kk) {
    uint32_t kb[4];
    ldmatrix_x4(kb, k_addr.at(0, 2 * kk));
    mma_m16n8k16<Element>(rS[0], rQ[kk], FragB{{kb[0], kb[1]}});
    mma_m16n8k16<Element>(rS[1], rQ[kk], FragB{{kb[2], kb[3]}});
  }

  // Scale into the log2 domain (softcap first); mask keys a row does not see.
  if (VariantTraits<kVariant>::kSoftcap && p.softcap > 0.0f) {
#pragma unroll
    for (int j = 0; j < 2; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) rS[j].x[e] = apply_softcap(rS[j].x[e] * p.softmax_scale, p.softcap) * kLog2e;
    }
  } else {
    const float scale_log2 = p.softmax_scale * kLog2e;
#pragma unroll
    for (int j = 0; j < 2; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) rS[j].x[e] *= scale_log2;
    }
  }
  constexpr bool kPaged = VariantTraits<kVariant>::kPaged;
  if (key0 < w.full_lo || key0 + Cfg::kBlockN > w.full_hi || (kPaged && bad_page != 0)) {
#pragma unroll
    for (int j = 0; j < 2; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {  // element e: row g + 8 * (e / 2), key 8j + 2t + e % 2
        const int in_tile = 8 * j + 2 * (lane % 4) + e % 2;
        const int key = key0 + in_tile;
        const int half = e / 2;
        if (key < rows.lo[half] || key >= rows.hi[half] || (kPaged && ((bad_page >> in_tile) & 1u))) {
          rS[j].x[e] = -INFINITY;
        }
      }
    }
  }

  // m_new = max(m, rowmax(S)); P = exp2(S - m_new); l = alpha l + rowsum(P); O = alpha O (exp2 on the
  // special function unit: Exp2Approx).
  // A row's 16 scores sit in the 4 lanes of a quad: max over the quad with two shuffles.
  float alpha[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    float mx = fmaxf(fmaxf(rS[0].x[2 * half], rS[0].x[2 * half + 1]), fmaxf(rS[1].x[2 * half], rS[1].x[2 * half + 1]));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    alpha[half] = softmax[half].rescale(mx, Exp2Approx{});
#pragma unroll
    for (int j = 0; j < 2; ++j) {
#pragma unroll
      for (int e = 2 * half; e < 2 * half + 2; ++e) {
        rS[j].x[e] = softmax[half].prob(rS[j].x[e], Exp2Approx{});
        softmax[half].l += rS[j].x[e];  // this lane's part of the row sum; quad-reduced at the end
      }
    }
  }
  // Once the running max settles it rarely moves: skip the rescale when no row of the warp moved.
  if (__any_sync(0xffffffffu, alpha[0] != 1.0f || alpha[1] != 1.0f)) {
#pragma unroll
    for (int n = 0; n < Cfg::kONTiles; ++n) {
      rO[n].x[0] *= alpha[0];
      rO[n].x[1] *= alpha[0];
      rO[n].x[2] *= alpha[1];
      rO[n].x[3] *= alpha[1];
    }
  }

  // O += P V. The S accumulators are exactly P's A fragment (rows g, g+8; keys 2t.., 2t+8..).
  const FragA rP = {{pack_pair<Element>(rS[0].x[0], rS[0].x[1]), pack_pair<Element>(rS[0].x[2], rS[0].x[3]),
                     pack_pair<Element>(rS[1].x[0], rS[1].x[1]), pack_pair<Element>(rS[1].x[2], rS[1].x[3])}};
  const LdmatrixBases<KvTile<Cfg>> v_addr = v_rel.shifted(s_stage);  // V row ((lane/8)%2)*8 + lane%8, chunk lane/16
#pragma unroll
  for (int dn = 0; dn < Cfg::kHeadDim / 16; ++dn) {
    uint32_t vb[4];  // b0, b1 of head-dim columns 16dn..+7, then of 16dn+8..+15
    ldmatrix_x4_trans(vb, v_addr.at(0, 2 * dn));
    mma_m16n8k16<Element>(rO[2 * dn], rP, FragB{{vb[0], vb[1]}});
    mma_m16n8k16<Element>(rO[2 * dn + 1], rP, FragB{{vb[2], vb[3]}});
  }
}


// The block's attention: every warp's tiles through its cp.async pipeline, then the warps' results
// (O / l and lse per row) in shared memory (MergeSmem) for block_output. w comes from
// block_coords; its key ranges are filled in here.
template <typename Element, typename Cfg, Variant kVariant>
__device__ __forceinline__ void attend_block(const SplitParams& prm, BlockWork& w, unsigned char* smem) {
  const DecodeProblem& p = prm.p;
  const int lane = static_cast<int>(keep_in_register(threadIdx.x % kWarpSize));
  const int warp = static_cast<int>(keep_in_register(threadIdx.x / kWarpSize));
  // The length, Q and the L2 prefetch of the first tiles go out together: the tile positions wait
  // for the length, the tiles' bytes need not (kv_loader.cuh, prefetch_first_tiles).
  using Traits = VariantTraits<kVariant>;
  const int len = sequence_length(p, w.b);
  FragA rQ[Cfg::kKSteps];
  load_q<Element, Cfg>(prm, w, lane, rQ);
  auto warp_tile_key0 = [&](const BlockWork& work, int it) {
    return work.tile_base + (warp + it * Cfg::kWarps) * Cfg::kBlockN;
  };
  const bool tile_pages =
      Traits::kPaged && p.block_table != nullptr && (!Traits::kAnyPages || p.page_size % Cfg::kBlockN == 0);
  // Pages of whole tiles: lane j's page of the warp's tile j, read with the length as if the
  // sequence filled the cache; used when the block's tiles start where that guess put them.
  int spec_tile_base = -1, spec_pages = -1;
  if (prm.prefetch_start) {
    BlockWork spec = w;
    block_keys(prm, static_cast<int>(p.capacity), &spec);
    prefetch_first_tiles<Element, Cfg, kVariant>(prm, spec);
    if (tile_pages) {
      spec_tile_base = spec.tile_base;
      spec_pages = tile_page_batch(prm, spec, warp_tile_key0(spec, lane), warp + lane * Cfg::kWarps < spec.n_tiles);
    }
  }
  block_keys(prm, len, &w);
  ThreadRows rows;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    // Padding rows (past w.rows) borrow the last row's range; they are computed, never stored.
    const int r = min(w.row_tile * kRowsPerBlock + lane / 4 + 8 * half, w.rows - 1);
    const KeyRange keys = query_keys(p, prm.group.div(r), len);
    rows.lo[half] = max(static_cast<int>(keys.lo), w.split_lo);
    rows.hi[half] = min(static_cast<int>(keys.hi), w.split_hi);
  }

  OnlineSoftmax softmax[2];
  FragC rO[Cfg::kONTiles] = {};
  const int my_tiles = w.n_tiles > warp ? ceil_div(w.n_tiles - warp, Cfg::kWarps) : 0;
  const uint32_t s_warp = keep_in_register(smem_address(smem) + warp * Cfg::kStages * Cfg::kStageBytes);
  const CopyOffsets<Cfg> copy_offsets(lane);
  uint32_t* s_mask = reinterpret_cast<uint32_t*>(smem + Cfg::kDataBytes) + warp * Cfg::kStages;
  const uint32_t s_mask_addr = keep_in_register(smem_address(s_mask));
  // ldmatrix lanes of a stage's K and V tiles, relative to the stage (attend_tile adds it).
  LdmatrixBases<KvTile<Cfg>> k_rel(0, (lane / 16) * 8 + lane % 8, (lane / 8) % 2);
  LdmatrixBases<KvTile<Cfg>> v_rel(Cfg::kTileBytes, ((lane / 8) % 2) * 8 + lane % 8, lane / 16);
#pragma unroll
  for (int i = 0; i < LdmatrixBases<KvTile<Cfg>>::kBases; ++i) {
    k_rel.base[i] = keep_in_register(k_rel.base[i]);
    v_rel.base[i] = keep_in_register(v_rel.base[i]);
  }
  auto tile_key0 = [&](int it) { return warp_tile_key0(w, it); };
  int pages = -1, pages_next = -1;  // lane j: page of the warp's tile (32 * batch + j), this batch and the next

  // Software pipeline: iteration `it` issues tile it + kStages - 1 and computes tile it, so
  // kStages - 1 tiles stay in flight; the first kStages - 1 iterations only issue. (One load
  // site keeps the kernel's code small: it is fetched cold after every L2 flush.)
  for (int it = 1 - Cfg::kStages; it < my_tiles; ++it) {
    const int ahead = it + Cfg::kStages - 1;
    if (ahead < my_tiles) {
      if (tile_pages && ahead % kWarpSize == 0) {
        // The next batch's page indices load while this batch's tiles stream.
        if (ahead == 0) {
          pages_next = spec_tile_base == w.tile_base ? spec_pages : tile_page_batch(prm, w, tile_key0(lane), lane < my_tiles);
        }
        pages = pages_next;
        const int next = ahead + kWarpSize + lane;
        pages_next = tile_page_batch(prm, w, tile_key0(next), next < my_tiles);
      }
      const int page = __shfl_sync(0xffffffffu, pages, ahead % kWarpSize);
      const int stage = ahead % Cfg::kStages;
      load_kv_tile<Element, Cfg, kVariant>(prm, w, lane, tile_key0(ahead), page, s_warp + stage * Cfg::kStageBytes,
                                           copy_offsets, s_mask + stage);
    }
    cp_async_commit();  // an empty group past the last tile keeps the group count fixed
    if (it < 0) continue;
    cp_async_wait<Cfg::kStages - 1>();
    __syncwarp();  // every lane's copies of tile `it` (and its page mask) are visible to the warp
    const int stage = it % Cfg::kStages;
    uint32_t bad_page = 0;
    if (Traits::kPaged && p.block_table != nullptr) {
      // Through the kept shared address: from s_mask, ptxas re-derived the address every tile.
      asm volatile("ld.shared.u32 %0, [%1];" : "=r"(bad_page) : "r"(s_mask_addr + stage * 4u) : "memory");
    }
    attend_tile<Element, Cfg, kVariant>(p, w, rows, lane, tile_key0(it), s_warp + stage * Cfg::kStageBytes, k_rel,
                                        v_rel, bad_page, rQ, softmax, rO);
    __syncwarp();  // every lane is done reading this stage before a later iteration refills it
  }
  cp_async_wait<0>();

  // Each warp's rows: l summed over the quad, then O / l into the warp's own stages (every lane
  // is past its last tile) and lse into sLse.
  const MergeSmem<Cfg> s(smem);
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    float l = softmax[half].l;
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    softmax[half].l = l;
    const float inv_l = softmax[half].inv_l();
    const int row = lane / 4 + 8 * half;
    float* dst = s.sO + warp * Cfg::kMergeWarpStride + row * Cfg::kMergeRowStride + 2 * (lane % 4);
#pragma unroll
    for (int n = 0; n < Cfg::kONTiles; ++n) {
      *reinterpret_cast<float2*>(dst + 8 * n) = make_float2(rO[n].x[2 * half] * inv_l, rO[n].x[2 * half + 1] * inv_l);
    }
    if (lane % 4 == 0) s.sLse[row * Cfg::kWarps + warp] = softmax[half].lse();
  }
  __syncthreads();  // all warps' partial results are in shared memory

}

// Calls store(row, col, o, lse) for every stored row of the block (row in the tile, r = row_tile *
// kRows + row < w.rows) and every 4 columns col..col+3: o = the block's merged O there, lse the
// row's merged lse. The merge is MergeState's over the warps, in its all-at-once form
// (unnormalised_weight, merged_lse: weight 0 and lse -inf for a row no warp saw), with all
// the row's warp lse in registers at once (independent exponentials, no serial chain and no
// barrier: one thread per (row, warp) and a barrier for the weights cost about 1 us at batch 1).
template <typename Cfg, typename Store>
__device__ __forceinline__ void block_output(const BlockWork& w, const MergeSmem<Cfg>& s, Store&& store) {
  constexpr int kQuads = Cfg::kHeadDim / 4;
  static_assert(Cfg::kWarps % 4 == 0, "a row's warp lse are read as float4");
  const int tile_rows = min(kRowsPerBlock, w.rows - w.row_tile * kRowsPerBlock);
  for (int item = threadIdx.x; item < tile_rows * kQuads; item += Cfg::kThreads) {
    const int row = item / kQuads;
    const int col = (item % kQuads) * 4;
    float lse[Cfg::kWarps];
#pragma unroll
    for (int wp = 0; wp < Cfg::kWarps; wp += 4) {
      *reinterpret_cast<float4*>(lse + wp) = *reinterpret_cast<const float4*>(s.sLse + row * Cfg::kWarps + wp);
    }
    float mx = lse[0];
#pragma unroll
    for (int wp = 1; wp < Cfg::kWarps; ++wp) mx = fmaxf(mx, lse[wp]);
    float sum = 0.0f;
#pragma unroll
    for (int wp = 0; wp < Cfg::kWarps; ++wp) {
      lse[wp] = MergeState::unnormalised_weight(lse[wp], mx);  // now the unnormalised weight
      sum += lse[wp];
    }
    const float inv_sum = sum > 0.0f ? 1.0f / sum : 0.0f;
    float4 o = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
    for (int wp = 0; wp < Cfg::kWarps; ++wp) {
      const float weight = lse[wp] * inv_sum;
      const float4 ow =
          *reinterpret_cast<const float4*>(s.sO + wp * Cfg::kMergeWarpStride + row * Cfg::kMergeRowStride + col);
      o.x += weight * ow.x;
      o.y += weight * ow.y;
      o.z += weight * ow.z;
      o.w += weight * ow.w;
    }
    store(row, col, o, MergeState::merged_lse(mx, sum));
  }
}

}  // namespace sfa::cuda::decode_fast
