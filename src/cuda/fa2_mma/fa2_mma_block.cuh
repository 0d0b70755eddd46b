// The per-block state of the fa2_mma key loop (Fa2MmaBlock) and the key-block bounds of a range
// of query rows (KeyBlocks): where the tiles are, the warp's registers, and one iteration of the
// key loop (Algorithm 1, lines 6-10). fa2_mma_kernel.cuh holds the kernel around it.
#pragma once

#include <cuda_runtime.h>

#include "common/attention_math.h"
#include "common/problem.h"
#include "cuda/common/cp_async.cuh"
#include "cuda/common/mma_attention.cuh"
#include "cuda/common/varlen.cuh"
#include "cuda/fa2_mma/fa2_mma_traits.cuh"

namespace sfa::cuda {

// The key blocks a query block visits, [n_min, n_max), and the unmasked run [unmasked_lo,
// unmasked_hi) inside it: every key of those blocks is visible from every row of the query block.
struct KeyBlocks {
  int n_min, n_max, unmasked_lo, unmasked_hi;
};

template <int kBlockN>
__device__ __forceinline__ KeyBlocks key_blocks(int first_row, int last_row, const SequenceView& s,
                                                int window_left, int window_right) {
  // Both ends of visible_keys() grow with the row, so the first and last rows bound the block.
  const KeyRange first = visible_keys(first_row, s.len_q, s.len_k, window_left, window_right);
  const KeyRange last = visible_keys(last_row, s.len_q, s.len_k, window_left, window_right);
  KeyBlocks kb;
  kb.n_min = static_cast<int>(first.lo / kBlockN);
  kb.n_max = last.hi > first.lo ? static_cast<int>((last.hi + kBlockN - 1) / kBlockN) : kb.n_min;
  const int64_t common_lo = last.lo, common_hi = first.hi > 0 ? first.hi : 0;
  kb.unmasked_hi = max(kb.n_min, min(kb.n_max, static_cast<int>(common_hi / kBlockN)));
  kb.unmasked_lo = max(kb.n_min, min(kb.unmasked_hi, static_cast<int>((common_lo + kBlockN - 1) / kBlockN)));
  return kb;
}

// Per-block state of the key loop: where the tiles are, and the warp's registers.
template <class Tr>
struct Fa2MmaBlock {
  using T = typename Tr::T;
  using KLoader = TileLoader<typename Tr::KTile, Tr::kThreads, T>;
  using VLoader = TileLoader<typename Tr::VTile, Tr::kThreads, T>;
  uint32_t sK, sV;
  LdmatrixBases<typename Tr::QTile> q_addr;  // the warp's rows
  LdmatrixBases<typename Tr::KTile> k_addr;  // the warp's keys
  LdmatrixBases<typename Tr::VTile> v_addr;  // the warp's keys (rows of V), the warp's columns
  // Warp pairs: V rows of the partner's keys, the partner's P, where this warp's P and row
  // statistics go and where the partner's are.
  LdmatrixBases<typename Tr::VTile> v_addr_other;
  LdmatrixBases<typename Tr::PTile> p_addr_other;
  uint32_t sP_warp;
  float* s_max;  // [2][kWarpRows] of this row group
  const T* k_src;  // the thread's K and V copy sources (TileLoader::src), unless kStateInSmem
  const T* v_src;
  // The block's scalars: sequence lengths, the window (clamped to int: -1 or a bound that still
  // matters), the first query row and the key blocks. With kStateInSmem they live in shared memory
  // (written before the key loop, read where used) and sc_reg is unused.
  struct Scalars {
    int len_q, len_k, window_left, window_right, m0;
    KeyBlocks kb;
  };
  static_assert(sizeof(Scalars) <= kFa2MmaScalarBytes, "Scalars must fit their shared-memory slot");
  Scalars sc_reg;
  FragC rO[Tr::kMmaM][Tr::kTilesD];
  SoftmaxRows<Tr::kRowsPerThread> rows;

  __device__ __forceinline__ static Scalars* smem_scalars() {
    extern __shared__ __align__(128) unsigned char smem[];
    return reinterpret_cast<Scalars*>(smem + Tr::kSmemScalars);
  }
  __device__ __forceinline__ Scalars scalars() const {
    if constexpr (Tr::kStateInSmem) {
      return *smem_scalars();
    } else {
      return sc_reg;
    }
  }
  // With kStateInSmem thread 0 writes them: a barrier must follow before other threads read.
  __device__ __forceinline__ void set_scalars(const Scalars& s) {
    if constexpr (Tr::kStateInSmem) {
      if (threadIdx.x == 0) *smem_scalars() = s;
    } else {
      sc_reg = s;
    }
  }
  // The sequence row of the thread's row 0 (tile 0, row g) and the warp's first key in a key block.
  __device__ __forceinline__ int row0() const { return scalars().m0 + warp_m() * Tr::kWarpRows + lane() / 4; }
  __device__ __forceinline__ int key_offset() const { return warp_n() * Tr::kWarpKeys; }

  // Strides and scales are read from the kernel parameters `p` (constant memory) at each use
  // rather than held in registers, which O and S fill.
  // kGuard: the tile may hold rows past len_k (only the last key block does).
  template <bool kGuard>
  __device__ __forceinline__ void load_k(int n, const AttentionProblem& p) {
    KLoader::with_source(k_source(), threadIdx.x)
        .template load<kGuard>(sK, static_cast<int64_t>(n) * Tr::kBlockN, scalars().len_k - n * Tr::kBlockN,
                               p.k_stride.row);
    cp_async_commit();
  }
  template <bool kGuard>
  __device__ __forceinline__ void load_v(int n, const AttentionProblem& p) {
    VLoader::with_source(v_source(), threadIdx.x)
        .template load<kGuard>(sV, static_cast<int64_t>(n) * Tr::kBlockN, scalars().len_k - n * Tr::kBlockN,
                               p.v_stride.row);
    cp_async_commit();
  }
  // K_{n-1} when the loop goes on past n (a whole tile: only the last key block is ragged), else
  // copies that read nothing; see TileLoader::load_if.
  __device__ __forceinline__ void prefetch_k(int n, const AttentionProblem& p) {
    const bool more = n > scalars().kb.n_min;
    KLoader::with_source(k_source(), threadIdx.x)
        .load_if(more, sK, static_cast<int64_t>(more ? n - 1 : n) * Tr::kBlockN, p.k_stride.row);
    cp_async_commit();
  }

  // How the warp's rows see its keys of key block n, from the warp's own KeyBlocks (kept in
  // shared memory by the kernel, read on masked steps only): kNone: no row sees any (P would be 0
  // and alpha 1, so skipping both products leaves O, m and l unchanged bit for bit); kAll: every
  // row sees every key (no mask); kSome: mask. Warp pairs always mask (they exchange P and the
  // row maxima on every block); without a bounded key range only a ragged last block is masked.
  enum class Visibility { kNone, kSome, kAll };
  static constexpr bool kWarpVisibility = Tr::kCausal && !Tr::kPairs;
  __device__ __forceinline__ static KeyBlocks* warp_key_blocks() {
    extern __shared__ __align__(128) unsigned char smem[];
    return reinterpret_cast<KeyBlocks*>(smem + Tr::kSmemWarpKeys) + threadIdx.x / 32;
  }
  __device__ __forceinline__ Visibility warp_visibility(int n) const {
    if constexpr (!kWarpVisibility) return Visibility::kSome;
    const KeyBlocks w = *warp_key_blocks();
    if (n < w.n_min || n >= w.n_max) return Visibility::kNone;
    return n >= w.unmasked_lo && n < w.unmasked_hi ? Visibility::kAll : Visibility::kSome;
  }

  // K_{n-1} and V_{n-1} into the other slot of the double-buffered tiles (kKvStages 2) when the
  // loop goes on past n (whole tiles: only the last key block is ragged), else copies that read
  // nothing; one copy group.
  __device__ __forceinline__ void prefetch_kv(int n, uint32_t slot, const AttentionProblem& p) {
    const bool more = n > scalars().kb.n_min;
    const int64_t first_row = static_cast<int64_t>(more ? n - 1 : n) * Tr::kBlockN;
    KLoader::with_source(k_source(), threadIdx.x).load_if(more, sK + slot, first_row, p.k_stride.row);
    VLoader::with_source(v_source(), threadIdx.x).load_if(more, sV + slot, first_row, p.v_stride.row);
    cp_async_commit();
  }

  // The key loop, from the last key block down: one loop for the masked edges (the ragged end or
  // causal diagonal, a sliding window's left edge) and the unmasked run between them, so two step
  // bodies, not one per edge. kPlain: the scores need no transform (no softcap, a positive scale).
  template <bool kPlain>
  __device__ __forceinline__ void key_loop(const AttentionProblem& p) {
    for (int n = scalars().kb.n_max - 1; n >= scalars().kb.n_min; --n) {
      const KeyBlocks kb = scalars().kb;
      if (n >= kb.unmasked_lo && n < kb.unmasked_hi) {
        step<false, kPlain>(n, p);
      } else {
        step<true, kPlain>(n, p);
      }
    }
  }

  // One iteration of the key loop over key block n (Algorithm 1, lines 6-10).
  template <bool kMasked, bool kPlain>
  __device__ __forceinline__ void step(int n, const AttentionProblem& p) {
    if constexpr (Tr::kKvStages == 2) {
      step_double_buffered<kMasked, kPlain>(n, p);
    } else {
      step_single_buffered<kMasked, kPlain>(n, p);
    }
  }

  // S = Q K_n^T over the warp's keys (K tile at k), then the score transform (scale sign / softcap;
  // none with kPlain), the mask (on masked steps whose rows see some of the keys) and the rows'
  // maxima m_tile. With kSByTile S is computed one 16-row tile after the other.
  template <bool kMasked, bool kPlain>
  __device__ __forceinline__ void scores(FragC (&s)[Tr::kMmaM][Tr::kTilesN], float (&m_tile)[Tr::kRowsPerThread],
                                         int n, Visibility vis, const ScoreScale& scale,
                                         const LdmatrixBases<typename Tr::KTile>& k) const {
    clear(s);
    if constexpr (Tr::kSByTile) {
#pragma unroll
      for (int mi = 0; mi < Tr::kMmaM; ++mi) {
        gemm_qk<T, Tr::kHeadDim, Tr::kAhead>(reinterpret_cast<FragC(&)[1][Tr::kTilesN]>(s[mi]),
                                             q_addr.shifted(16 * mi * Tr::QTile::kRowBytes), k);
      }
    } else {
      gemm_qk<T, Tr::kHeadDim, Tr::kAhead>(s, q_addr, k);
    }
    if constexpr (!kPlain) transform_scores(s, scale);
    if (kMasked && vis == Visibility::kSome) {
      const Scalars sc = scalars();
      mask_scores(s, row0(), n * Tr::kBlockN + key_offset() + 2 * (lane() % 4), sc.len_q, sc.len_k,
                  sc.window_left, sc.window_right);
    }
    tile_row_max(s, m_tile);
  }

  // m_new = max(m, rowmax(S)); P = exp2(S c - m_new c); l = alpha l + rowsum(P); O = alpha O
  __device__ __forceinline__ void softmax(FragC (&s)[Tr::kMmaM][Tr::kTilesN], const float (&m_tile)[Tr::kRowsPerThread],
                                          const ScoreScale& scale) {
    load_row_sums();
    softmax_update(s, rO, rows, m_tile, scale.scale_log2);
    store_row_sums();
  }

  // With double-buffered K and V: key block n's tiles sit in slot (n_max - 1 - n) % 2, copied
  // during key block n + 1. K_{n-1} and V_{n-1} go to the other slot once S = Q K_n^T is issued
  // (so their copies do not queue ahead of its ldmatrix loads) and stream in during the softmax,
  // P V_n and the next block's start. One barrier per key block: with kPlain an unmasked step has
  // no branch after it, and ptxas schedules S, the softmax and P V as one piece.
  template <bool kMasked, bool kPlain>
  __device__ __forceinline__ void step_double_buffered(int n, const AttentionProblem& p) {
    static_assert(Tr::KTile::kBytes == Tr::VTile::kBytes, "K and V slots are the same size");
    const ScoreScale scale = score_scale(p.softmax_scale, p.softcap);
    const Visibility vis = kMasked ? warp_visibility(n) : Visibility::kAll;
    FragC rS[Tr::kMmaM][Tr::kTilesN];
    float m_tile[Tr::kRowsPerThread];
    const int n_max = scalars().kb.n_max;
    const uint32_t slot = ((n_max - 1 - n) & 1) * Tr::KTile::kBytes, other = Tr::KTile::kBytes - slot;
    cp_async_wait<0>();
    __syncthreads();  // K_n and V_n (and Q) are in shared memory; every warp is done with the other slot
    if (n == n_max - 1) Tr::Probe::mark(BlockPhase::kTilesLanded);
    if (vis == Visibility::kNone) {  // the warp still copies its share of the next tiles
      prefetch_kv(n, other, p);
      return;
    }
    scores<kMasked, kPlain>(rS, m_tile, n, vis, scale, k_addr.shifted(slot));
    prefetch_kv(n, other, p);  // K_{n-1}, V_{n-1}
    softmax(rS, m_tile, scale);
    gemm_pv<T, Tr::kAhead>(rO, rS, v_addr.shifted(slot));  // O = O + P V_n
  }

  // With one K and one V tile: V_n streams in during S = Q K_n^T, K_{n-1} during P V_n (and,
  // without warp pairs, the softmax). Two block barriers per key block. Without pairs the second
  // comes right after S; warp pairs exchange their row maxima at a pair barrier instead and place
  // the second block barrier after the softmax and their halves of P, so S, the softmax and the P
  // exchange are one piece for ptxas (head_dim 256: +1.5-4% without a mask, +1-2% with it).
  template <bool kMasked, bool kPlain>
  __device__ __forceinline__ void step_single_buffered(int n, const AttentionProblem& p) {
    const ScoreScale scale = score_scale(p.softmax_scale, p.softcap);
    const Visibility vis = kMasked ? warp_visibility(n) : Visibility::kAll;
    FragC rS[Tr::kMmaM][Tr::kTilesN];
    float m_tile[Tr::kRowsPerThread];
    // The first key block's V was copied after Q and K in a group of its own (kPrologueV): it may
    // still be in flight.
    const bool first = n == scalars().kb.n_max - 1;
    if (Tr::kPrologueV && first) {
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();  // K_n (and Q) are in shared memory; every warp is done reading V_{n+1} and P
    if (first) Tr::Probe::mark(BlockPhase::kTilesLanded);
    if (!(Tr::kPrologueV && first)) load_v<kMasked>(n, p);  // V_n streams in while the first product runs

    if (vis != Visibility::kNone) {
      scores<kMasked, kPlain>(rS, m_tile, n, vis, scale, k_addr);
      if constexpr (Tr::kPairs) {
        publish_rows(m_tile, s_max);
        named_barrier_sync(1 + warp_m(), 64);  // the partner's row maxima are in shared memory
        const float* other = s_max + (1 - warp_n()) * Tr::kWarpRows;
#pragma unroll
        for (int r = 0; r < Tr::kRowsPerThread; ++r) m_tile[r] = fmaxf(m_tile[r], other[thread_row(r)]);
        softmax(rS, m_tile, scale);
        store_p<T, typename Tr::PTile>(sP_warp, key_offset(), rS, lane());
      }
    }

    cp_async_wait<0>();
    __syncthreads();  // V_n (and the partner's P) are in shared memory; every warp is done reading K_n
    prefetch_k(n, p);  // K_{n-1} streams in during the second product
    if (vis == Visibility::kNone) return;
    if constexpr (!Tr::kPairs) softmax(rS, m_tile, scale);
    // O = O + P V_n (with pairs: this warp's columns, its own keys from registers, then the partner's)
    gemm_pv<T, Tr::kAhead>(rO, rS, v_addr);
    if constexpr (Tr::kPairs) gemm_pv_smem<T, Tr::kWarpKeys / 16, Tr::kAhead>(rO, p_addr_other, v_addr_other);
  }

  // With kStateInSmem the thread's K and V copy sources live in shared memory: each is read once
  // per key block, and the registers go to O, S and the fragments (at head_dim 128 ptxas would
  // otherwise spill them to local memory).
  __device__ __forceinline__ static const T** copy_sources() {
    extern __shared__ __align__(128) unsigned char smem[];
    return reinterpret_cast<const T**>(smem + Tr::kSmemSrc) + 2 * threadIdx.x;
  }
  __device__ __forceinline__ void set_sources(const T* k, const T* v) {
    if constexpr (Tr::kStateInSmem) {
      copy_sources()[0] = k;
      copy_sources()[1] = v;
    } else {
      k_src = k;
      v_src = v;
    }
  }
  __device__ __forceinline__ const T* k_source() const { return Tr::kStateInSmem ? copy_sources()[0] : k_src; }
  __device__ __forceinline__ const T* v_source() const { return Tr::kStateInSmem ? copy_sources()[1] : v_src; }

  // With kStateInSmem the running row sums l live in shared memory between key blocks
  // (thread-private slots); otherwise these do nothing.
  __device__ __forceinline__ static float* row_sums() {
    extern __shared__ __align__(128) unsigned char smem[];
    return reinterpret_cast<float*>(smem + Tr::kSmemL) + threadIdx.x * Tr::kRowsPerThread;
  }
  __device__ __forceinline__ void load_row_sums() {
    if constexpr (Tr::kStateInSmem) {
      const float* l = row_sums();
#pragma unroll
      for (int r = 0; r < Tr::kRowsPerThread; ++r) rows.l[r] = l[r];
    }
  }
  __device__ __forceinline__ void store_row_sums() {
    if constexpr (Tr::kStateInSmem) {
      float* l = row_sums();
#pragma unroll
      for (int r = 0; r < Tr::kRowsPerThread; ++r) l[r] = rows.l[r];
    }
  }

  // Recomputed from threadIdx rather than held in registers.
  __device__ __forceinline__ int lane() const { return static_cast<int>(threadIdx.x % 32); }
  __device__ __forceinline__ int warp_m() const { return static_cast<int>(threadIdx.x / 32) / Tr::kWarpsN; }
  __device__ __forceinline__ int warp_n() const { return static_cast<int>(threadIdx.x / 32) % Tr::kWarpsN; }
  // Row r of the thread's rows within the warp's rows: tile r / 2, row g (+ 8 for odd r).
  __device__ __forceinline__ int thread_row(int r) const { return 16 * (r / 2) + 8 * (r % 2) + lane() / 4; }
  // Writes the quad-reduced row values of this warp to its half of a pair's [2][kWarpRows] array.
  __device__ __forceinline__ void publish_rows(const float (&v)[Tr::kRowsPerThread], float* pair_rows) const {
    if (lane() % 4 == 0) {
#pragma unroll
      for (int r = 0; r < Tr::kRowsPerThread; ++r) pair_rows[warp_n() * Tr::kWarpRows + thread_row(r)] = v[r];
    }
  }
};

}  // namespace sfa::cuda
