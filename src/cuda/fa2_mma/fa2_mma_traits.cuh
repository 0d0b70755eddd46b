// Compile-time shape of one fa2_mma instantiation: element type, head_dim, causal, tile sizes,
// and everything derived from them (fragment counts, shared-memory tiles, launch bounds).
#pragma once

#include "cuda/common/smem_tile.cuh"
#include "cuda/fa2_mma/fa2_mma_config.h"

namespace sfa::cuda {

// kCausal: the instantiation for a bounded key range per row (causal and/or a sliding window);
// false means every row sees every key (only the ragged last key tile is masked).
// The tile sizes and kHeavyFirst default to the shipped choice; bench/fa2_mma_tuning.cu
// instantiates others to measure them.
template <typename T_, int kHeadDim_, bool kCausal_, int kBlockM_ = fa2_mma_tile(kHeadDim_, kCausal_).block_m,
          int kBlockN_ = fa2_mma_tile(kHeadDim_, kCausal_).block_n,
          int kWarps_ = fa2_mma_tile(kHeadDim_, kCausal_).warps, bool kHeavyFirst_ = true>
struct Fa2MmaTraits {
  using T = T_;
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr bool kCausal = kCausal_;
  static constexpr int kBlockM = kBlockM_;  // Br
  static constexpr int kBlockN = kBlockN_;  // Bc
  static constexpr int kWarps = kWarps_;
  static constexpr int kThreads = 32 * kWarps;
  // Query blocks of one head run last-first: with a causal mask the last are the heaviest, and
  // starting them first leaves light blocks for the tail of the grid.
  static constexpr bool kHeavyFirst = kHeavyFirst_;

  // Warp w owns query rows [w * kWarpRows, (w + 1) * kWarpRows) of the block, as kMmaM tiles of 16.
  static constexpr int kWarpRows = kBlockM / kWarps;
  static constexpr int kMmaM = kWarpRows / 16;
  static constexpr int kRowsPerThread = 2 * kMmaM;  // rows g and g + 8 of each 16-row tile
  static constexpr int kTilesN = kBlockN / 8;       // n8 tiles of S across the key block
  static constexpr int kTilesD = kHeadDim / 8;      // n8 tiles of O across head_dim
  static_assert(kWarpRows % 16 == 0, "each warp needs whole 16-row mma tiles");
  static_assert(kBlockN % 16 == 0 && kHeadDim % 32 == 0, "tiles must be whole ldmatrix x4 loads");

  using QTile = SmemTile<kBlockM, kHeadDim>;
  using KTile = SmemTile<kBlockN, kHeadDim>;
  using VTile = SmemTile<kBlockN, kHeadDim>;
  static constexpr int kSmemQ = 0;
  static constexpr int kSmemK = kSmemQ + QTile::kBytes;
  static constexpr int kSmemV = kSmemK + KTile::kBytes;
  static constexpr int kSmemBytes = kSmemV + VTile::kBytes;
  static_assert(kSmemBytes == fa2_mma_smem_bytes(kBlockM, kBlockN, kHeadDim), "smem layout");

  // Two 4-warp blocks per SM (the register file holds 2 x 128 threads x 255 registers): while one
  // waits on a barrier or a copy, the other's matrix products run.
  static constexpr int kMinBlocksPerSm = kWarps == 4 ? 2 : 1;
};

}  // namespace sfa::cuda
