// decode_fast: the cp.async copy of one warp's K and V tile (kBlockN cache positions of one KV
// head) into a swizzled shared-memory stage, for contiguous and paged caches. Untrusted page
// indices are never dereferenced: their rows are zero-filled and flagged for masking.
#pragma once

#include <cstdint>

#include "common/problem.h"
#include "cuda/common/cp_async.cuh"
#include "cuda/common/smem_tile.cuh"
#include "cuda/decode_fast/block_work.cuh"
#include "cuda/decode_fast/config.h"

namespace sfa::cuda::decode_fast {

// A K or V tile in shared memory: kBlockN key rows of head_dim values, swizzled (smem_tile.cuh).
template <typename Cfg>
using KvTile = SmemTile<Cfg::kBlockN, Cfg::kHeadDim>;

// load_kv_tile for pages smaller than a tile (or of a size that does not divide it): a
// block-table read per row (a loop, not unrolled: the common layouts never run it, and every
// instruction of the kernel is fetched cold after an L2 flush).
template <typename Element, typename Cfg>
__device__ __forceinline__ void load_kv_tile_small_pages(const DecodeProblem& p, const BlockWork& w, int lane,
                                                      int key0, uint32_t s_stage, uint32_t* mask) {
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
    const int page = in_split ? p.block_table[w.b * p.block_table_stride + pos / p.page_size] : 0;
    const bool page_ok = page >= 0 && page < p.num_pages;
    bad_page |= (in_split && !page_ok) ? 1u << row : 0u;
    const int in_page = pos % p.page_size;
    const bool valid = in_split && page_ok;
    const uint32_t dst = s_stage + KvTile<Cfg>::offset(row, chunk);
    cp_async_16(dst, valid ? k + w.k_base + page * p.k_stride.batch + in_page * p.k_stride.row + elem : k, valid);
    cp_async_16(dst + Cfg::kTileBytes,
                valid ? v + w.v_base + page * p.v_stride.batch + in_page * p.v_stride.row + elem : v, valid);
  }
  bad_page = __reduce_or_sync(0xffffffffu, bad_page);
  if (lane == 0) *mask = bad_page;
}

// Issues the cp.async of the K and V rows [key0, key0 + kBlockN) into one stage; lane copies
// chunk lane % kChunksPerRow of rows lane / kChunksPerRow + kRowsPerCopy * c. Positions at or
// past split_hi are zero-filled, not read. Paged: a row on a page index outside [0, num_pages)
// is zero-filled too and flagged in *mask (bit = row in tile) so its scores are masked out.
template <typename Element, typename Cfg>
__device__ __forceinline__ void load_kv_tile(const DecodeProblem& p, const BlockWork& w, int lane,
                                             int key0, uint32_t s_stage, uint32_t* mask) {
  const Element* k = static_cast<const Element*>(p.k_cache);
  const Element* v = static_cast<const Element*>(p.v_cache);
  const int chunk = lane % Cfg::kChunksPerRow;
  const int row0 = lane / Cfg::kChunksPerRow;
  const int64_t elem = chunk * (kChunkBytes / kElementBytes);
  auto copy = [&](int row, const Element* k_src, const Element* v_src, bool valid) {
    const uint32_t dst = s_stage + KvTile<Cfg>::offset(row, chunk);
    cp_async_16(dst, valid ? k_src : k, valid);
    cp_async_16(dst + Cfg::kTileBytes, valid ? v_src : v, valid);
  };
  if (p.block_table == nullptr) {
    // Contiguous: row r of the tile is row key0 + r of sequence b.
    const Element* k_src = k + w.k_base + (key0 + row0) * p.k_stride.row + elem;
    const Element* v_src = v + w.v_base + (key0 + row0) * p.v_stride.row + elem;
#pragma unroll
    for (int c = 0; c < Cfg::kCopiesPerTile; ++c) {
      const int row = row0 + c * Cfg::kRowsPerCopy;
      copy(row, k_src + c * Cfg::kRowsPerCopy * p.k_stride.row, v_src + c * Cfg::kRowsPerCopy * p.v_stride.row,
           key0 + row < w.split_hi);
    }
  } else if (p.page_size % Cfg::kBlockN == 0) {
    // The tile lies in one page: one (warp-uniform) block-table read.
    const int page = p.block_table[w.b * p.block_table_stride + key0 / p.page_size];
    const bool page_ok = page >= 0 && page < p.num_pages;
    const int in_page = key0 % p.page_size + row0;
    const Element* k_src = k + w.k_base + page * p.k_stride.batch + in_page * p.k_stride.row + elem;
    const Element* v_src = v + w.v_base + page * p.v_stride.batch + in_page * p.v_stride.row + elem;
#pragma unroll
    for (int c = 0; c < Cfg::kCopiesPerTile; ++c) {
      const int row = row0 + c * Cfg::kRowsPerCopy;
      copy(row, k_src + c * Cfg::kRowsPerCopy * p.k_stride.row, v_src + c * Cfg::kRowsPerCopy * p.v_stride.row,
           page_ok && key0 + row < w.split_hi);
    }
    if (lane == 0) {
      const int rows_in_split = min(Cfg::kBlockN, w.split_hi - key0);
      *mask = page_ok ? 0u : (1u << rows_in_split) - 1u;
    }
  } else {
    load_kv_tile_small_pages<Element, Cfg>(p, w, lane, key0, s_stage, mask);
  }
}

}  // namespace sfa::cuda::decode_fast
