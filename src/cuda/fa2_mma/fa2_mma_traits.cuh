// Compile-time shape of one fa2_mma instantiation: element type, head_dim, causal, tile sizes,
// and everything derived from them (warp layout, fragment counts, shared-memory tiles, launch
// bounds).
#pragma once

#include "cuda/common/mma_attention.cuh"
#include "cuda/common/smem_tile.cuh"
#include "cuda/fa2_mma/fa2_mma_config.h"

namespace sfa::cuda {

// The phases of a block that a probe can mark: entry, the first key block's tiles in shared
// memory, the end of the key loop, the output issued.
enum class BlockPhase { kStart, kTilesLanded, kLoopDone, kStored };
struct NoPhaseProbe {
  __device__ __forceinline__ static void mark(BlockPhase) {}
};

// kCausal: the instantiation for a bounded key range per row (causal and/or a sliding window);
// false means every row sees every key (only the ragged last key tile is masked).
// The tile sizes default to the shipped choice; bench/fa2_mma_tuning.cu instantiates others to
// measure them (kAhead, kStateInSmem, kPrologueV: Fa2MmaTile::ahead, ::state_in_smem,
// ::prologue_v). kStagedOut: the output leaves through shared memory in 16-byte chunks
// (store_output). Probe: hooks at the block's phases (NoPhaseProbe: none; the tuning program
// times them). kMinBlocksPerSm_: the launch bound's blocks per SM (0: the rule below). kKvStages_:
// K and V tiles in shared memory (Fa2MmaTile::kv_stages; 0: the shipped choice). kSByTile_:
// Fa2MmaTile::s_by_tile (-1: the shipped choice where the step allows it, 0 / 1: off / on).
template <typename T_, int kHeadDim_, bool kCausal_, int kBlockM_ = fa2_mma_tile(kHeadDim_, kCausal_).block_m,
          int kBlockN_ = fa2_mma_tile(kHeadDim_, kCausal_).block_n,
          int kWarps_ = fa2_mma_tile(kHeadDim_, kCausal_).warps,
          int kWarpsN_ = fa2_mma_tile(kHeadDim_, kCausal_).warps_n, int kAhead_ = fa2_mma_tile(kHeadDim_, kCausal_).ahead,
          bool kStateInSmem_ = fa2_mma_tile(kHeadDim_, kCausal_).state_in_smem, bool kPrologueV_ = fa2_mma_tile(kHeadDim_, kCausal_).prologue_v,
          bool kStagedOut_ = true, class Probe_ = NoPhaseProbe, int kMinBlocksPerSm_ = 0, int kKvStages_ = 0,
          int kSByTile_ = -1>
struct Fa2MmaTraits {
  using T = T_;
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr bool kCausal = kCausal_;
  static constexpr int kBlockM = kBlockM_;  // Br
  static constexpr int kBlockN = kBlockN_;  // Bc
  static constexpr int kWarps = kWarps_;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kAhead = kAhead_;
  static constexpr bool kStateInSmem = kStateInSmem_;
  static constexpr int kKvStages = kKvStages_ > 0 ? kKvStages_ : fa2_mma_tile(kHeadDim_, kCausal_).kv_stages;
  // Double-buffered K and V always copy the first key block's V with Q and K.
  static constexpr bool kPrologueV = kPrologueV_ || kKvStages == 2;
  static constexpr bool kStagedOut = kStagedOut_;
  using Probe = Probe_;

  // Warp w = wm kWarpsN + wn owns query rows [wm kWarpRows, (wm + 1) kWarpRows) of the block as
  // kMmaM tiles of 16, the keys [wn kWarpKeys, (wn + 1) kWarpKeys) of each key block in S, and
  // the head-dim columns [wn kWarpCols, (wn + 1) kWarpCols) of O. With kWarpsN = 2 the two
  // warps of a row group (a pair) exchange their row maxima and their halves of P in shared
  // memory, so each multiplies the whole P by its half of V.
  static constexpr int kWarpsN = kWarpsN_;
  static constexpr int kWarpsM = kWarps / kWarpsN;
  static constexpr int kWarpRows = kBlockM / kWarpsM;
  static constexpr int kWarpKeys = kBlockN / kWarpsN;
  static constexpr int kWarpCols = kHeadDim / kWarpsN;
  static constexpr int kMmaM = kWarpRows / 16;
  static constexpr int kRowsPerThread = 2 * kMmaM;  // rows g and g + 8 of each 16-row tile
  static constexpr int kTilesN = kWarpKeys / 8;     // n8 tiles of S across the warp's keys
  static constexpr int kTilesD = kWarpCols / 8;     // n8 tiles of O across the warp's columns
  static_assert(kWarpsN == 1 || kWarpsN == 2, "a row group is one warp or a warp pair");
  static_assert(kWarps % kWarpsN == 0 && kWarpRows % 16 == 0, "each warp needs whole 16-row mma tiles");
  static_assert(kWarpKeys % 16 == 0 && kWarpCols % 16 == 0 && kHeadDim % 32 == 0,
                "tiles must be whole ldmatrix x4 loads");
  // A pair's column halves and its partner's P half must sit on whole swizzle groups (the
  // 16-byte chunk offsets of both are folded into addresses, smem_tile.cuh).
  static_assert(kWarpsN == 1 || (kWarpCols % 64 == 0 && kBlockN == 64), "warp pairs need 64-key blocks, d >= 128");
  static_assert(kKvStages == 1 || (kKvStages == 2 && kWarpsN == 1), "double-buffered K / V: without warp pairs");

  using QTile = SmemTile<kBlockM, kHeadDim>;
  using KTile = SmemTile<kBlockN, kHeadDim>;
  using VTile = SmemTile<kBlockN, kHeadDim>;
  using PTile = SmemTile<kWarpRows, kBlockN>;  // one row group's P (warp pairs only)
  static constexpr bool kPairs = kWarpsN > 1;
  // No barrier between S = Q K^T and the softmax: double-buffered K and V, or warp pairs (which
  // exchange their row maxima at a pair barrier). Only these steps gain from a key loop compiled
  // for plain scores and from S by 16-row tile (head_dim 128 single-buffered: within 1%).
  static constexpr bool kPlainLoop = kKvStages == 2 || kPairs;
  static constexpr bool kSByTile =
      kSByTile_ < 0 ? fa2_mma_tile(kHeadDim_, kCausal_).s_by_tile && kPlainLoop : kSByTile_ > 0;
  static_assert(!kSByTile || kPlainLoop, "S by 16-row tile needs a step without a barrier after S");
  static constexpr int kSmemQ = 0;
  static constexpr int kSmemK = kSmemQ + QTile::kBytes;
  static constexpr int kSmemV = kSmemK + kKvStages * KTile::kBytes;  // [kKvStages] KTile, then VTile
  static constexpr int kSmemP = kSmemV + kKvStages * VTile::kBytes;  // [kWarpsM] PTile
  static constexpr int kSmemMax = kSmemP + (kPairs ? kWarpsM * PTile::kBytes : 0);  // [kWarpsM][2][kWarpRows]
  static constexpr int kSmemSum = kSmemMax + (kPairs ? kWarps * kWarpRows * 4 : 0);  // the same, row sums
  // With kStateInSmem: each thread's running row sums l and its K and V copy sources (each
  // touched once per key block)
  static constexpr int kSmemL = kSmemSum + (kPairs ? kWarps * kWarpRows * 4 : 0);  // [kThreads][kRowsPerThread]
  static constexpr int kSmemSrc = kSmemL + (kStateInSmem ? kThreads * kRowsPerThread * 4 : 0);  // [kThreads][2]
  // Each warp's key blocks (KeyBlocks of its own rows: masked steps skip or unmask by it)
  static constexpr int kSmemScalars = kSmemSrc + (kStateInSmem ? kThreads * 2 * 8 : 0);  // the block's scalars
  static constexpr int kSmemWarpKeys = kSmemScalars + (kStateInSmem ? int(kFa2MmaScalarBytes) : 0);  // [kWarps][4] int
  static constexpr int kSmemBytes = kSmemWarpKeys + kWarps * 16;
  static_assert(kSmemBytes == fa2_mma_smem_bytes(kBlockM, kBlockN, kHeadDim, kWarps, kWarpsN, kStateInSmem, kKvStages),
                "smem layout");

  // Two 4-warp blocks per SM (the register file holds 2 x 128 threads x 255 registers): while one
  // waits on a barrier or a copy, the other's matrix products run.
  static constexpr int kMinBlocksPerSm = kMinBlocksPerSm_ > 0 ? kMinBlocksPerSm_ : kWarps == 4 ? 2 : 1;
};

// The sm_90a binary's tiles of the production instantiation (fa2_mma_tile(..., sm90 = true)).
template <typename T, int kHeadDim, bool kCausal>
using Fa2MmaTraitsSm90 =
    Fa2MmaTraits<T, kHeadDim, kCausal, fa2_mma_tile(kHeadDim, kCausal, true).block_m,
                 fa2_mma_tile(kHeadDim, kCausal, true).block_n, fa2_mma_tile(kHeadDim, kCausal, true).warps,
                 fa2_mma_tile(kHeadDim, kCausal, true).warps_n, fa2_mma_tile(kHeadDim, kCausal, true).ahead,
                 fa2_mma_tile(kHeadDim, kCausal, true).state_in_smem, fa2_mma_tile(kHeadDim, kCausal, true).prologue_v,
                 true, NoPhaseProbe, 0, fa2_mma_tile(kHeadDim, kCausal, true).kv_stages,
                 fa2_mma_tile(kHeadDim, kCausal, true).s_by_tile ? 1 : 0>;

}  // namespace sfa::cuda
