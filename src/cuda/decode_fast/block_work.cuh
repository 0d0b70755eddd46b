// decode_fast: which part of the problem a pass-1 block owns (sequence, KV head, split, row tile)
// and which cache positions it reads. Shared by the loader and the kernels.
#pragma once

#include <cstdint>

#include "common/attention_math.h"
#include "common/problem.h"
#include "cuda/decode_fast/config.h"
#include "cuda/decode_fast/split_params.h"

namespace sfa::cuda::decode_fast {

// The part of the problem one block owns, and the key ranges it reads.
struct BlockWork {
  int b, h_kv, split, row_tile;
  int rows;                 // packed rows of this (b, h_kv): G * seqlen_q
  int tile_base;            // first position of the split's first tile (a multiple of kKeysPerTile)
  int n_tiles;              // tiles of kKeysPerTile positions from tile_base
  int split_lo, split_hi;   // cache positions the block's rows may see: [split_lo, split_hi)
  int full_lo, full_hi;     // positions every row of the block sees (tiles inside need no mask)
  int64_t k_base, v_base;   // element offset of head h_kv (plus sequence b when contiguous)
};

// A stored length outside [0, capacity] is untrusted data: the sequence is treated as empty.
__device__ __forceinline__ int sequence_length(const DecodeProblem& p, int b) {
  if (p.cache_seqlens == nullptr) return static_cast<int>(p.capacity);
  const int n = p.cache_seqlens[b];
  return (n < 0 || n > p.capacity) ? 0 : n;
}

// Keys query i of a sequence of `len` keys sees: all up to its own position, minus the window.
__device__ __forceinline__ KeyRange query_keys(const DecodeProblem& p, int i, int len) {
  return visible_keys(i, p.seqlen_q, len, p.window_left, /*window_right=*/0);
}

// Which (b, h_kv, split, row tile) work item `item` is (the block index, or a persistent block's
// item). The split varies fastest: the splits of one (b, h_kv, row tile) are consecutive blocks,
// as a thread-block cluster needs them.
__device__ __forceinline__ BlockWork block_coords(const SplitParams& prm, int item) {
  const DecodeProblem& p = prm.p;
  BlockWork w;
  int idx = item;  // the launcher keeps the item count below 2^31
  int next = prm.splits.div(idx);
  w.split = idx - next * p.num_splits;
  idx = next;
  next = prm.row_tiles.div(idx);
  w.row_tile = idx - next * prm.row_tiles.value();
  idx = next;
  w.b = prm.heads_kv.div(idx);
  w.h_kv = idx - w.b * p.heads_kv;
  w.rows = prm.group.value() * p.seqlen_q;
  w.k_base = static_cast<int64_t>(w.h_kv) * p.k_stride.head;
  w.v_base = static_cast<int64_t>(w.h_kv) * p.v_stride.head;
  if (p.block_table == nullptr) {
    w.k_base += static_cast<int64_t>(w.b) * p.k_stride.batch;
    w.v_base += static_cast<int64_t>(w.b) * p.v_stride.batch;
  }
  return w;
}

// The block's key ranges in a sequence of `len` keys. Rows are ordered by query index, and both
// ends of a query's key range grow with it: the block's keys are [lo of its first row, hi of its
// last row).
__device__ __forceinline__ void block_keys(const SplitParams& prm, int len, BlockWork* work) {
  const DecodeProblem& p = prm.p;
  BlockWork& w = *work;
  const int first_row = w.row_tile * kRowsPerBlock;
  const int last_row = min(first_row + kRowsPerBlock, w.rows) - 1;
  const KeyRange first = query_keys(p, prm.group.div(first_row), len);
  const KeyRange last = query_keys(p, prm.group.div(last_row), len);
  // Tiles sit on multiples of kKeysPerTile (a tile never straddles a page whose size is a
  // multiple of it); splits are whole tiles, so only a split's ends need masks. Positions before
  // first.lo in the first tile are real keys of the sequence: loaded, then masked.
  // Positions fit in 31 bits (capacity < 2^31): 32-bit divisions, 64-bit only where a product
  // may pass the last position.
  const int lo = static_cast<int>(first.lo), hi = static_cast<int>(last.hi);
  const int aligned_lo = lo / kKeysPerTile * kKeysPerTile;
  const int tiles = hi > lo ? (hi - aligned_lo + kKeysPerTile - 1) / kKeysPerTile : 0;
  const int tiles_per_split = prm.splits.div(tiles + p.num_splits - 1);
  const int64_t base = aligned_lo + static_cast<int64_t>(w.split) * tiles_per_split * kKeysPerTile;
  const int64_t end = min(base + tiles_per_split * kKeysPerTile, static_cast<int64_t>(hi));
  w.tile_base = static_cast<int>(min(base, static_cast<int64_t>(hi)));
  w.split_lo = static_cast<int>(min(max(base, static_cast<int64_t>(lo)), static_cast<int64_t>(hi)));
  w.split_hi = static_cast<int>(max(end, static_cast<int64_t>(w.split_lo)));
  w.n_tiles = w.split_hi > w.split_lo ? ceil_div(w.split_hi - w.tile_base, kKeysPerTile) : 0;
  w.full_lo = max(w.split_lo, static_cast<int>(last.lo));
  w.full_hi = min(w.split_hi, static_cast<int>(first.hi));
}

// The output position of packed row `row` of the block: query token i, query head h.
__device__ __forceinline__ void row_position(const SplitParams& prm, const BlockWork& w, int row, int* i, int* h) {
  const int r = w.row_tile * kRowsPerBlock + row;
  *i = prm.group.div(r);
  *h = w.h_kv * prm.group.value() + (r - *i * prm.group.value());
}

}  // namespace sfa::cuda::decode_fast
