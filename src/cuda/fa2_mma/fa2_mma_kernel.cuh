// FlashAttention-2 forward on tensor cores (mma.sync m16n8k16, fp16/bf16, float32 accumulate).
//
// Paper notation (Dao 2023, Algorithm 1) -> code:
//   Br = kBlockM query rows per block (Q_i), Bc = kBlockN key rows per iteration (K_j, V_j),
//   S_ij = rS, P_ij = rS after the softmax step, O_i = rO, m_i / l_i = SoftmaxRows.
// Grid: one block per (batch b, head h, query block), all in gridDim.x (never above 65535 in y/z).
//   Heads are taken in groups (auto_group_heads); within a group the query blocks run from the
//   last (heaviest with a causal mask) to the first across all its heads (query_block).
// Block: kWarps warps; warp w = wm kWarpsN + wn owns query rows [wm kWarpRows, (wm + 1) kWarpRows)
//   and, with warp pairs (kWarpsN = 2), half the keys of S and half the columns of O (traits).
// Shared memory (dynamic, XOR-swizzled 16-byte chunks, see smem_tile.cuh): sQ [Br, d], kv_stages
//   tiles sK [Bc, d] and as many sV [Bc, d]; with pairs P [Br, Bc] and the pairs' row maxima and
//   sums; each warp's key blocks; with kStateInSmem each thread's running row sums and copy sources
//   and the block's scalars.
//   The key loop runs from the last key block down. With one K and one V tile, V_j is copied while
//   S = Q K_j^T runs and K_{j-1} while P V_j runs; with two of each (Fa2MmaTile::kv_stages), K_{j-1}
//   and V_{j-1} while the softmax and P V_j run (cp.async; fa2_mma_block.cuh has the steps).
// Masked and unmasked iterations are split: the last key blocks (the ragged end, the causal
// diagonal) and, with a sliding window, the first ones are masked; the blocks in between are not,
// and blocks no query row of the block can see are never visited.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <climits>

#include "common/attention_math.h"
#include "common/problem.h"
#include "cuda/common/check.cuh"
#include "cuda/common/cp_async.cuh"
#include "cuda/common/mma_attention.cuh"
#include "cuda/common/varlen.cuh"
#include "cuda/cuda_backend.h"
#include "cuda/fa2_mma/fa2_mma_block.cuh"
#include "cuda/fa2_mma/fa2_mma_traits.cuh"

namespace sfa::cuda {

// A window bound as int: -1 (unbounded) also when the bound can never cut a row's keys
// (window_left >= len_k, window_right >= len_q), so every value left fits the int arithmetic.
__device__ __forceinline__ int clamp_window(int64_t w, int limit) {
  return (w < 0 || w >= limit) ? -1 : static_cast<int>(w);
}

// Which query block a block computes. Heads are taken in groups of `group_heads` (b, h) pairs;
// within a group the query blocks run heaviest first across all its heads (m_block descending,
// then head), so with a causal mask the long blocks of every head start before the short ones
// and the short ones fill the tail; a group's heads share their K and V in L2.
struct QueryBlock {
  int bh, m_block;
};

__device__ __forceinline__ QueryBlock query_block(int block, int m_blocks, int bh_count, int group_heads) {
  const int group = block / (group_heads * m_blocks);
  const int r = block - group * group_heads * m_blocks;
  const int heads_here = min(group_heads, bh_count - group * group_heads);  // the last group may be short
  const int i = r / heads_here;
  return {group * group_heads + (r - i * heads_here), m_blocks - 1 - i};
}

// Where a block works: batch b, head h, its sequence and its first query row m0.
struct BlockCoords {
  int b, h, m0;
  SequenceView seq;
};

template <int kBlockM>
__device__ __forceinline__ BlockCoords block_coords(const AttentionProblem& p, int block, int group_heads) {
  const int m_blocks = (p.seqlen_q + kBlockM - 1) / kBlockM;
  const QueryBlock qb = query_block(block, m_blocks, p.batch * p.heads, group_heads);
  BlockCoords c;
  c.b = qb.bh / p.heads;
  c.h = qb.bh % p.heads;
  c.m0 = qb.m_block * kBlockM;
  c.seq = sequence_view(p, c.b);
  return c;
}

// Where a block reads: its first Q row, and the first K and V rows of its sequence (KV head h_kv).
template <typename T>
struct BlockSources {
  const T *q, *k, *v;
};

template <typename T>
__device__ __forceinline__ BlockSources<T> block_sources(const AttentionProblem& p, const BlockCoords& c, int h_kv) {
  return {static_cast<const T*>(p.q) + c.b * p.q_stride.batch + (c.seq.q_offset + c.m0) * p.q_stride.row +
              c.h * p.q_stride.head,
          static_cast<const T*>(p.k) + c.b * p.k_stride.batch + c.seq.k_offset * p.k_stride.row +
              h_kv * p.k_stride.head,
          static_cast<const T*>(p.v) + c.b * p.v_stride.batch + c.seq.k_offset * p.v_stride.row +
              h_kv * p.v_stride.head};
}

// blockIdx.x read again through a volatile asm, which the compiler cannot merge with the first
// read: the epilogue recomputes the block's coordinates after the key loop rather than keeping
// them in registers through it (there the registers go to O, S and the fragments).
__device__ __forceinline__ int block_index_again() {
  int x;
  asm volatile("mov.u32 %0, %%ctaid.x;\n" : "=r"(x));
  return x;
}

// The block's work (the kernel's body for one tile configuration).
template <class Tr>
__device__ __forceinline__ void fa2_mma_block(const AttentionProblem& p, int group_heads) {
  using T = typename Tr::T;
  extern __shared__ __align__(128) unsigned char smem[];
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int wm = warp / Tr::kWarpsN, wn = warp % Tr::kWarpsN;

  Tr::Probe::mark(BlockPhase::kStart);
  const BlockCoords bc = block_coords<Tr::kBlockM>(p, blockIdx.x, group_heads);
  const int h = bc.h, h_kv = h / (p.heads / p.heads_kv), m0 = bc.m0;
  const SequenceView seq = bc.seq;
  if (m0 >= seq.len_q) return;  // the whole block leaves: no barrier is skipped by some warps only
  const int valid_q = min(Tr::kBlockM, seq.len_q - m0);

  Fa2MmaBlock<Tr> blk;
  const int window_left = Tr::kCausal ? clamp_window(p.window_left, seq.len_k) : -1;
  const int window_right = Tr::kCausal ? clamp_window(p.window_right, seq.len_q) : -1;
  const KeyBlocks kb = key_blocks<Tr::kBlockN>(m0, m0 + valid_q - 1, seq, window_left, window_right);
  blk.set_scalars({seq.len_q, seq.len_k, window_left, window_right, m0, kb});
  const int warp_row = wm * Tr::kWarpRows;
  const uint32_t s_base = smem_address(smem);
  float* const s_sum = reinterpret_cast<float*>(smem + Tr::kSmemSum) + wm * 2 * Tr::kWarpRows;
  blk.s_max = reinterpret_cast<float*>(smem + Tr::kSmemMax) + wm * 2 * Tr::kWarpRows;
  clear(blk.rO);
  blk.rows.init();
  blk.store_row_sums();

  if (kb.n_max > kb.n_min) {
    const BlockSources<T> g = block_sources<T>(p, bc, h_kv);
    blk.set_sources(typename Fa2MmaBlock<Tr>::KLoader(g.k, p.k_stride.row, tid).src,
                    typename Fa2MmaBlock<Tr>::VLoader(g.v, p.v_stride.row, tid).src);
    const uint32_t sQ = s_base + Tr::kSmemQ;
    blk.sK = s_base + Tr::kSmemK;
    blk.sV = s_base + Tr::kSmemV;
    // ldmatrix lane roles (mma.cuh): A rows l % 16, chunk l / 16; K rows l % 8 + 8 (l / 16),
    // chunk (l / 8) % 2; V (transposed) rows l % 8 + 8 ((l / 8) % 2), chunk l / 16. The warp's
    // key rows and (pairs) column half are whole swizzle groups: plain byte offsets.
    const int v_row = lane % 8 + 8 * ((lane / 8) % 2);
    const uint32_t v_cols = wn * Tr::kWarpCols * 2;
    blk.q_addr = {sQ, warp_row + lane % 16, lane / 16};
    blk.k_addr = {blk.sK, blk.key_offset() + lane % 8 + 8 * (lane / 16), (lane / 8) % 2};
    blk.v_addr = LdmatrixBases<typename Tr::VTile>(blk.sV, blk.key_offset() + v_row, lane / 16).shifted(v_cols);
    if constexpr (Tr::kPairs) {
      const int other_keys = (1 - wn) * Tr::kWarpKeys;
      blk.v_addr_other = LdmatrixBases<typename Tr::VTile>(blk.sV, other_keys + v_row, lane / 16).shifted(v_cols);
      blk.sP_warp = s_base + Tr::kSmemP + wm * Tr::PTile::kBytes;
      // The partner's keys start at chunk other_keys / 8, inside the swizzle group (64-key rows):
      // it joins the lane's chunk bits.
      blk.p_addr_other = {blk.sP_warp, lane % 16, (lane / 16) ^ (other_keys / 8)};
    }
    if (Fa2MmaBlock<Tr>::kWarpVisibility) {
      const int first = m0 + warp_row, last = min(first + Tr::kWarpRows, seq.len_q) - 1;
      if (lane == 0) {
        *blk.warp_key_blocks() = last < first ? KeyBlocks{0, 0, 0, 0}
                                              : key_blocks<Tr::kBlockN>(first, last, seq, window_left, window_right);
      }
      __syncwarp();  // the warp's lanes read it at the start of masked steps
    }

    if constexpr (Tr::kStateInSmem) __syncthreads();  // thread 0's block scalars are in shared memory
    // Prologue: Q_i and the last key block K_{n_max-1} in one copy group (and V_{n_max-1} in a
    // second one, kPrologueV).
    TileLoader<typename Tr::QTile, Tr::kThreads, T>(g.q, p.q_stride.row, tid)
        .template load<true>(sQ, 0, valid_q, p.q_stride.row);
    blk.template load_k<true>(kb.n_max - 1, p);
    if constexpr (Tr::kPrologueV) blk.template load_v<true>(kb.n_max - 1, p);
    // Where no barrier separates S from the softmax (Tr::kPlainLoop) the key loop is compiled
    // twice: for scores without a transform (no softcap, a positive scale: the usual call), whose
    // unmasked steps then have no branch between S and P V, and for the rest. The transform stays
    // a run-time argument of one kernel.
    if constexpr (Tr::kPlainLoop) {
      if (score_scale(p.softmax_scale, p.softcap).transform == ScoreTransform::kPlain) {
        blk.template key_loop<true>(p);
      } else {
        blk.template key_loop<false>(p);
      }
    } else {
      blk.template key_loop<false>(p);
    }
    cp_async_wait<0>();  // the last step's empty K copies have landed before the block can exit
  }
  Tr::Probe::mark(BlockPhase::kLoopDone);

  // l = the row sums over all keys (the quad's columns; with pairs, both warps' keys, added in
  // the same order by both so that they agree bit for bit).
  blk.load_row_sums();
  quad_sum_l(blk.rows);
  if constexpr (Tr::kPairs) {
    blk.publish_rows(blk.rows.l, s_sum);
    named_barrier_sync(1 + wm, 64);  // both halves of the row sums are in shared memory
#pragma unroll
    for (int r = 0; r < Tr::kRowsPerThread; ++r) {
      blk.rows.l[r] = s_sum[blk.thread_row(r)] + s_sum[Tr::kWarpRows + blk.thread_row(r)];
    }
  }

  // out = O / l, lse = m + log(l); a row with no visible key gets 0 and -inf. With pairs each warp
  // writes its columns, the first of the pair the lse. The warp's Q rows stage the output: the
  // last reads of Q (the last S = Q K^T) were before the last step's second barrier.
  const BlockCoords e = Tr::kStateInSmem ? block_coords<Tr::kBlockM>(p, block_index_again(), group_heads) : bc;
  const int warp_row0 = e.m0 + wm * Tr::kWarpRows;
  T* out_warp = static_cast<T*>(p.out) + e.b * p.out_stride.batch + (e.seq.q_offset + warp_row0) * p.out_stride.row +
                e.h * p.out_stride.head + wn * Tr::kWarpCols;
  float* lse_row0 = p.lse == nullptr || wn != 0 ? nullptr
                                                 : p.lse + e.b * p.lse_batch_stride + e.h * p.lse_head_stride +
                                                       e.seq.q_offset + warp_row0 + lane / 4;
  const uint32_t staging = smem_address(smem) + Tr::kSmemQ + wm * Tr::kWarpRows * Tr::QTile::kRowBytes;
  // Double-buffered K / V has no barrier after the last S = Q K^T: the warp's own reads of its Q
  // rows are ordered before the staging writes by the warp.
  if constexpr (Tr::kKvStages == 2) __syncwarp();
  store_output<T, typename Tr::QTile, Tr::kStagedOut>(blk.rO, blk.rows,
                                                    score_scale(p.softmax_scale, p.softcap).scale_log2, staging,
                                                    wn * Tr::kWarpCols / Tr::QTile::kChunkElems, out_warp,
                                                    p.out_stride.row, lse_row0, e.seq.len_q - warp_row0, lane);
  Tr::Probe::mark(BlockPhase::kStored);
}

// Tr: the tiles of every binary; Tr90 those of the sm_90a binary (compute capability 9.0, the only
// one that runs it), which the launcher sizes shared memory for on such devices.
template <class Tr, class Tr90 = Tr>
__global__ void __launch_bounds__(Tr::kThreads, Tr::kMinBlocksPerSm)
    fa2_mma_kernel(const AttentionProblem p, int group_heads) {
  static_assert(Tr90::kThreads == Tr::kThreads && Tr90::kMinBlocksPerSm == Tr::kMinBlocksPerSm &&
                    Tr90::kBlockM == Tr::kBlockM && Tr90::kCausal == Tr::kCausal,
                "the sm90 tiles share the launch shape");
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ == 900
  fa2_mma_block<Tr90>(p, group_heads);
#else
  fa2_mma_block<Tr>(p, group_heads);
#endif
}

// Heads per launch-order group (query_block). Measured on the H100 (docs/fa2_mma.md): with a
// causal mask, one group of every head (the heaviest query blocks of all heads first) is 10-16%
// faster than head after head from 2k query rows per head on, where a block's work varies most;
// with fewer rows head after head is as fast or faster (its concurrently running blocks share
// their head's K and V in L2; at head_dim 256, 1k rows in 16 blocks of 64, 2-4% faster). The
// group is capped at half the resident blocks in heads, so that each head keeps at least two
// blocks running together.
constexpr int64_t kLptMinQueryRows = 2048;
template <class Tr>
int auto_group_heads(const AttentionProblem& p, const DeviceInfo& info, int64_t m_blocks,
                     int64_t min_query_rows = kLptMinQueryRows) {
  if (!Tr::kCausal || m_blocks * Tr::kBlockM < min_query_rows) return 1;
  const int64_t resident = int64_t(info.sm_count > 0 ? info.sm_count : 1) * Tr::kMinBlocksPerSm;
  const int64_t bh = int64_t(p.batch) * p.heads;
  return static_cast<int>(std::max<int64_t>(1, std::min(bh, resident / 2)));
}

// The launch's query blocks of block_m rows (m_blocks per head) and blocks in all; an error when
// they exceed the grid limit.
inline Status query_block_grid(const AttentionProblem& p, int block_m, int64_t* m_blocks, int64_t* blocks) {
  *m_blocks = (static_cast<int64_t>(p.seqlen_q) + block_m - 1) / block_m;
  *blocks = *m_blocks * p.batch * p.heads;
  if (*blocks > INT_MAX) {
    return Status(StatusCode::kUnsupported, "fa2_mma: batch * heads * query blocks = " +
                                                std::to_string(*blocks) + " exceeds the grid limit");
  }
  return Status::ok();
}

// Launches one instantiation: grid, dynamic shared memory above 48 KB, launch check.
// group_heads 0 picks the launch order with auto_group_heads().
template <class Tr, class Tr90 = Tr>
Status launch_fa2_mma_tiles(const AttentionProblem& p, const DeviceInfo& info, cudaStream_t stream,
                            int group_heads = 0) {
  int64_t m_blocks = 0, blocks = 0;
  if (Status st = query_block_grid(p, Tr::kBlockM, &m_blocks, &blocks); !st || blocks == 0) return st;
  // A compute capability 9.0 device runs the sm_90a binary when the build has one (else a PTX
  // of another architecture, with Tr's tiles): enough shared memory for either.
  const int smem =
      fa2_mma_sm90_tiles(info.sm_arch()) ? std::max(Tr90::kSmemBytes, Tr::kSmemBytes) : Tr::kSmemBytes;
  if (static_cast<size_t>(smem) > info.smem_per_block_optin) {
    return Status(StatusCode::kUnsupported,
                  "fa2_mma: head_dim " + std::to_string(Tr::kHeadDim) + " needs " + std::to_string(smem) +
                      " bytes of shared memory per block, the device has " +
                      std::to_string(info.smem_per_block_optin));
  }
  if (group_heads <= 0) group_heads = auto_group_heads<Tr>(p, info, m_blocks);
  group_heads = std::min(group_heads, p.batch * p.heads);
  auto kernel = fa2_mma_kernel<Tr, Tr90>;
  SFA_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  kernel<<<static_cast<unsigned>(blocks), Tr::kThreads, smem, stream>>>(p, group_heads);
  return check_launch("fa2_mma_kernel");
}

// The production instantiation of (dtype, head_dim, causal): tiles from fa2_mma_tile(), those of
// the sm_90a binary from fa2_mma_tile(..., sm90 = true).
template <typename T, int kHeadDim, bool kCausal>
Status run_fa2_mma(const AttentionProblem& p, const DeviceInfo& info, cudaStream_t stream) {
  return launch_fa2_mma_tiles<Fa2MmaTraits<T, kHeadDim, kCausal>, Fa2MmaTraitsSm90<T, kHeadDim, kCausal>>(p, info,
                                                                                                      stream);
}

}  // namespace sfa::cuda
