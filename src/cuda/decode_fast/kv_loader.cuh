// decode_fast: the cp.async copy of one warp's K and V tile (kBlockN cache positions of one KV
// head) into a swizzled shared-memory stage, for contiguous and paged caches; the page indices of
// a warp's next 32 tiles in one load; the L2 prefetch of a block's first tiles. Untrusted page
// indices are never dereferenced: their rows are zero-filled and flagged for masking.
#pragma once

#include <cstdint>

#include "common/problem.h"
#include "cuda/common/smem_tile.cuh"
#include "cuda/decode_fast/block_work.cuh"
#include "cuda/decode_fast/config.h"
#include "cuda/decode_fast/split_params.h"
#include "cuda/decode_fast/stream_copy.cuh"

namespace sfa::cuda::decode_fast {

// A K or V tile in shared memory: kBlockN key rows of head_dim values, swizzled (smem_tile.cuh).
template <typename Cfg>
using KvTile = SmemTile<Cfg::kBlockN, Cfg::kHeadDim>;

// load_kv_tile for pages smaller than a tile (or of a size that does not divide it): a
// block-table read per row (a loop, not unrolled: the common layouts never run it, and every
// instruction of the kernel is fetched cold after an L2 flush).
template <typename Element, typename Cfg>
__device__ __forceinline__ void load_kv_tile_small_pages(const SplitParams& prm, const BlockWork& w, int lane,
                                                      int key0, uint32_t s_stage, uint32_t* mask) {
  const uint64_t policy = stream_policy(prm.evict_first);
  const DecodeProblem& p = prm.p;
  const Element* k = static_cast<const Element*>(p.k_cache);
  const Element* v = static_cast<const Element*>(p.v_cache);
  const int chunk = lane % Cfg::kChunksPerRow;
  const int row0 = lane / Cfg::kChunksPerRow;
  const int64_t elem = chunk * (kChunkBytes / kElementBytes);
  uint32_t bad_page = 0;
#pragma unroll 1
  for (int c = 0; c < Cfg::kCopiesPerTile; ++c) {
    const int row = row0 + c * Cfg::kRowsPerCopy;
    const int pos = key0 + row;
    const bool in_split = pos < w.split_hi;
    const int entry = prm.page_size.div(pos);
    const int page = in_split ? p.block_table[w.b * p.block_table_stride + entry] : 0;
    const bool page_ok = static_cast<uint32_t>(page) < prm.page_limit;
    bad_page |= (in_split && !page_ok) ? 1u << row : 0u;
    const int in_page = pos - entry * p.page_size;
    const bool valid = in_split && page_ok;
    const uint32_t dst = s_stage + KvTile<Cfg>::offset(row, chunk);
    cp_async_16_stream(dst, valid ? k + w.k_base + page * p.k_stride.batch + in_page * p.k_stride.row + elem : k,
                       valid, policy);
    cp_async_16_stream(dst + Cfg::kTileBytes,
                       valid ? v + w.v_base + page * p.v_stride.batch + in_page * p.v_stride.row + elem : v, valid,
                       policy);
  }
  bad_page = __reduce_or_sync(0xffffffffu, bad_page);
  if (lane == 0) *mask = bad_page;
}

// x, kept in a register: ptxas cannot recompute the result of a volatile asm. Without it, it
// re-derives lane and warp indices, shared addresses and the copy offsets (CopyOffsets) inside
// the key loop from S2R reads of special registers (long-latency instructions on each tile's
// issue path): 14% more instructions per tile at bf16 head_dim 128 (docs/decode_fast.md, round 6).
__device__ __forceinline__ uint32_t keep_in_register(uint32_t x) {
  asm volatile("mov.b32 %0, %0;" : "+r"(x));
  return x;
}

// Where a lane's copies of a tile land in a stage (load_kv_tile): copy c writes chunk
// lane % kChunksPerRow of row lane / kChunksPerRow + kRowsPerCopy * c, at a swizzle key that
// repeats every kDistinct copies. Up to 4 of them (head_dim <= 128) the offsets are made once
// and serve every tile (the other copies are whole rows further: an immediate); at head_dim 256
// (8 distinct keys, registers short) each tile makes them.
template <typename Cfg>
struct CopyOffsets {
  static constexpr int kDistinct = Cfg::kRowsPerCopy >= 8 ? 1 : 8 / Cfg::kRowsPerCopy;
  static constexpr int kKept = kDistinct < Cfg::kCopiesPerTile ? kDistinct : Cfg::kCopiesPerTile;
  static constexpr bool kHeld = kKept <= 4;
  uint32_t off[kHeld ? kKept : 1];
  int lane;
  __device__ __forceinline__ explicit CopyOffsets(int lane_) : lane(lane_) {
    if constexpr (kHeld) {
#pragma unroll
      for (int c = 0; c < kKept; ++c) off[c] = keep_in_register(offset(c));
    }
  }
  // Copy c (known at compile time).
  __device__ __forceinline__ uint32_t at(int c) const {
    if constexpr (kHeld) {
      return off[c % kKept] + (c / kKept) * kKept * Cfg::kRowsPerCopy * KvTile<Cfg>::kRowBytes;
    } else {
      return offset(c);
    }
  }

 private:
  __device__ __forceinline__ uint32_t offset(int c) const {
    return KvTile<Cfg>::offset(lane / Cfg::kChunksPerRow + c * Cfg::kRowsPerCopy, lane % Cfg::kChunksPerRow);
  }
};

// Issues the cp.async of the K and V rows [key0, key0 + kBlockN) into one stage, L2 evict-first
// where the launcher asks (SplitParams::evict_first: the cache is read once per step,
// stream_copy.cuh); lane copies chunk lane % kChunksPerRow of rows lane / kChunksPerRow +
// kRowsPerCopy * c. Positions at or past split_hi are zero-filled, not read (a zero-size copy
// does not dereference its source). Paged with pages of whole tiles: `page` is the tile's
// page index (tile_page_batch); a row on a page index outside [0, num_pages) is zero-filled too
// and flagged in *mask (bit = row in tile) so its scores are masked out. kVariant: the layouts
// compiled in (VariantTraits).
template <typename Element, typename Cfg, Variant kVariant>
__device__ __forceinline__ void load_kv_tile(const SplitParams& prm, const BlockWork& w, int lane, int key0,
                                             int page, uint32_t s_stage, const CopyOffsets<Cfg>& dst,
                                             uint32_t* mask) {
  const DecodeProblem& p = prm.p;
  const Element* k = static_cast<const Element*>(p.k_cache);
  const Element* v = static_cast<const Element*>(p.v_cache);
  const int chunk = lane % Cfg::kChunksPerRow;
  const int row0 = lane / Cfg::kChunksPerRow;
  const int64_t elem = chunk * (kChunkBytes / kElementBytes);
  // The policy is made here, per tile, from the uniform flag: held in a register across the key
  // loop it was moved into a uniform register before every copy (two instructions per copy).
  const uint64_t policy = stream_policy(prm.evict_first);
  auto copy = [&](int c, const Element* k_src, const Element* v_src, bool valid) {
    const uint32_t to = s_stage + dst.at(c);
    cp_async_16_stream(to, k_src, valid, policy);
    cp_async_16_stream(to + Cfg::kTileBytes, v_src, valid, policy);
  };
  using Traits = VariantTraits<kVariant>;
  if (!Traits::kPaged || (Traits::kContiguous && p.block_table == nullptr)) {
    // Contiguous: row r of the tile is row key0 + r of sequence b.
    const Element* k_src = k + w.k_base + (key0 + row0) * p.k_stride.row + elem;
    const Element* v_src = v + w.v_base + (key0 + row0) * p.v_stride.row + elem;
#pragma unroll
    for (int c = 0; c < Cfg::kCopiesPerTile; ++c) {
      const int row = row0 + c * Cfg::kRowsPerCopy;
      copy(c, k_src + c * Cfg::kRowsPerCopy * p.k_stride.row, v_src + c * Cfg::kRowsPerCopy * p.v_stride.row,
           key0 + row < w.split_hi);
    }
  } else if (!Traits::kAnyPages || p.page_size % Cfg::kBlockN == 0) {
    // The tile lies in one page.
    const bool page_ok = static_cast<uint32_t>(page) < prm.page_limit;
    const int in_page = prm.page_size.mod(key0) + row0;
    const int64_t page_or_0 = page_ok ? page : 0;  // the copies of a bad page read nothing; no wild address
    const Element* k_src = k + w.k_base + page_or_0 * p.k_stride.batch + in_page * p.k_stride.row + elem;
    const Element* v_src = v + w.v_base + page_or_0 * p.v_stride.batch + in_page * p.v_stride.row + elem;
#pragma unroll
    for (int c = 0; c < Cfg::kCopiesPerTile; ++c) {
      const int row = row0 + c * Cfg::kRowsPerCopy;
      copy(c, k_src + c * Cfg::kRowsPerCopy * p.k_stride.row, v_src + c * Cfg::kRowsPerCopy * p.v_stride.row,
           page_ok && key0 + row < w.split_hi);
    }
    if (lane == 0) {
      const int rows_in_split = min(Cfg::kBlockN, w.split_hi - key0);
      *mask = page_ok ? 0u : (1u << rows_in_split) - 1u;
    }
  } else {
    load_kv_tile_small_pages<Element, Cfg>(prm, w, lane, key0, s_stage, mask);
  }
}

// Paged caches whose pages hold whole tiles: lane j returns the page index of the tile starting
// at `key0` (the warp's tile first + j), when `valid`. One coalesced load serves 32 tiles, so no
// block-table read waits on the issue path of each tile.
__device__ __forceinline__ int tile_page_batch(const SplitParams& prm, const BlockWork& w, int key0, bool valid) {
  return valid ? prm.p.block_table[w.b * prm.p.block_table_stride + prm.page_size.div(key0)] : -1;
}

// prefetch.L2 of one line (a hint: no fault, no register result).
__device__ __forceinline__ void prefetch_l2(const void* address) {
  asm volatile("prefetch.L2 [%0];\n" ::"l"(address));
}

// Before the sequence length arrives (a cold load after which the tile positions are known), the
// block prefetches into L2 its first kPrefetchTiles tiles as they are when the sequence fills the
// cache (`spec` = block_keys at length = capacity): the common case in a decode step, and the
// cp.async copies that follow then find their lines in L2 or already on their way. Every prefetched
// position is below capacity (inside the sequence's rows, or on a page the block table names).
// Paged: the block-table entries of those tiles instead, the first load the tiles wait on.
template <typename Element, typename Cfg, Variant kVariant>
__device__ __forceinline__ void prefetch_first_tiles(const SplitParams& prm, const BlockWork& spec) {
  const DecodeProblem& p = prm.p;
  const int rows = min(spec.n_tiles, Cfg::kPrefetchTiles) * Cfg::kBlockN;
  if (!VariantTraits<kVariant>::kPaged || (VariantTraits<kVariant>::kContiguous && p.block_table == nullptr)) {
    const Element* k = static_cast<const Element*>(p.k_cache) + spec.k_base;
    const Element* v = static_cast<const Element*>(p.v_cache) + spec.v_base;
    constexpr int kLineElems = Cfg::kHeadDim / Cfg::kLinesPerRow;
    for (int i = threadIdx.x; i < rows * Cfg::kLinesPerRow; i += Cfg::kThreads) {
      const int pos = spec.tile_base + i / Cfg::kLinesPerRow;
      if (pos >= spec.split_hi) break;
      const int col = (i % Cfg::kLinesPerRow) * kLineElems;
      prefetch_l2(k + pos * p.k_stride.row + col);
      prefetch_l2(v + pos * p.v_stride.row + col);
    }
  } else if (rows > 0 && threadIdx.x < kWarpSize) {
    // Lane t: the line of 32 entries from entry first + 32 t, up to the last prefetched row's.
    constexpr int kEntriesPerLine = 128 / sizeof(int32_t);
    const int first = prm.page_size.div(spec.tile_base) + static_cast<int>(threadIdx.x) * kEntriesPerLine;
    const int last = prm.page_size.div(min(spec.tile_base + rows, spec.split_hi) - 1);
    if (first <= last) prefetch_l2(p.block_table + spec.b * p.block_table_stride + first);
  }
}

}  // namespace sfa::cuda::decode_fast
