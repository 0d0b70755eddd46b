// decode_fast's tile configuration, chosen in one place per head dim, and the block bookkeeping
// the launcher and the kernels share.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/problem.h"

#if defined(__CUDACC__)
#define SFA_DF_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define SFA_DF_HOST_DEVICE inline
#endif

namespace sfa::cuda::decode_fast {

constexpr int kWarpSize = 32;
constexpr int kChunkBytes = 16;    // one vector load / cp.async
constexpr int kElementBytes = 2;   // fp16 and bf16
constexpr int kSmemPerSm = 228 * 1024;  // sm80/sm90: shared memory per SM, all blocks together

// Br: packed query rows per block, the M of one m16n8k16 tile.
constexpr int kRowsPerBlock = 16;
// Bc: keys per warp tile, the K of one m16n8k16 step of O += P V. Splits are whole tiles.
constexpr int kKeysPerTile = 16;

// The pass-1 kernels come in three variants, each with only the code its launches run (the code is
// fetched cold after every L2 flush): the common decode step on a contiguous cache, the same on
// pages of whole tiles, and everything else (softcap, pages smaller than a tile or of other sizes).
enum class Variant { kContiguous, kTilePages, kGeneral };
template <Variant kVariant>
struct VariantTraits {
  static constexpr bool kContiguous = kVariant != Variant::kTilePages;  // may run on a contiguous cache
  static constexpr bool kPaged = kVariant != Variant::kContiguous;      // may run on a paged cache
  static constexpr bool kAnyPages = kVariant == Variant::kGeneral;      // pages of any size
  static constexpr bool kSoftcap = kVariant == Variant::kGeneral;
};

// How much of the cache a warp keeps in flight: deep (3 stages at head_dim 128) where the grid is
// one wave, so that a few blocks keep the bytes coming; shallow (2 stages) for grids of several
// waves of short blocks (launch_split.cuh), where every SM streams anyway: there it measured
// 0.5-2.5% faster (batch 16-64, kv 1k-8k), while at batch 1 it costs up to 2.8%
// (docs/decode_fast.md, round 7).
enum class Pipeline { kDeep, kShallow };

constexpr int cmax(int a, int b) { return a > b ? a : b; }
constexpr size_t cmax(size_t a, size_t b) { return a > b ? a : b; }

// sm90 thread-block clusters: the splits of one (sequence, KV head, row tile) run as one cluster
// and merge through distributed shared memory. Up to 8 blocks is the portable cluster size; 16
// where the device allows it (cudaFuncAttributeNonPortableClusterSizeAllowed).
constexpr int kClusterMinSm = 90;
constexpr int kMaxPortableClusterSplits = 8;
constexpr int kMaxClusterSplits = 16;

// Each cluster block owns the output rows r with r % num_splits == its split and receives every
// peer's partial of them: num_splits * ceil(kRowsPerBlock / num_splits) inbox slots, at most this
// many over the cluster sizes 2..kMaxClusterSplits.
constexpr int inbox_slots(int splits) { return splits * ((kRowsPerBlock + splits - 1) / splits); }
constexpr int max_inbox_slots(int splits) {
  return splits > kMaxClusterSplits ? 0 : cmax(inbox_slots(splits), max_inbox_slots(splits + 1));
}
constexpr int kInboxSlots = max_inbox_slots(2);

// Pass 1 (split kernel) tiles for one head dim and pipeline depth.
template <int kHeadDim_, Pipeline kPipeline = Pipeline::kDeep>
struct SplitConfig {
  static constexpr int kHeadDim = kHeadDim_;
  // 8 warps (2 per SM sub-partition) hide each other's MMA / softmax latency in one block per
  // SM: 2 to 27% more GB/s than two 4-warp blocks per SM on the batch-1 decode grid rows, H100
  // (measured with the combine change of the same step: docs/decode_fast.md). head_dim 256
  // tiles are twice as large, so 4 warps fit.
  static constexpr int kWarps = kHeadDim <= 128 ? 8 : 4;
  static constexpr int kThreads = kWarps * kWarpSize;
  static constexpr int kRows = kRowsPerBlock;
  static constexpr int kBlockN = kKeysPerTile;

  // Copy layout: a warp-wide cp.async moves kRowsPerCopy key rows of 16-byte chunks.
  static constexpr int kChunksPerRow = kHeadDim * kElementBytes / kChunkBytes;
  static constexpr int kRowsPerCopy = kWarpSize / kChunksPerRow;
  static constexpr int kCopiesPerTile = kBlockN / kRowsPerCopy;
  static constexpr int kTileBytes = kBlockN * kHeadDim * kElementBytes;  // one K or V tile
  static constexpr int kStageBytes = 2 * kTileBytes;                     // K and V

  // Each warp keeps kStages - 1 tiles in flight while it computes one. Deep: about 24 KB of
  // pipeline per warp, 192 KB per block (one block per SM) for head_dim <= 128, 128 KB in flight
  // per SM, several times what HBM latency x bandwidth per SM needs. Shallow: 16 KB per warp.
  static constexpr int kPipelineBytesPerWarp = kPipeline == Pipeline::kDeep ? 24 * 1024 : 16 * 1024;
  static constexpr int kStages = cmax(2, kPipelineBytesPerWarp / kStageBytes);

  static constexpr int kKSteps = kHeadDim / 16;  // k16 steps of S = Q K^T
  static constexpr int kONTiles = kHeadDim / 8;  // n8 tiles of the O accumulator
  static_assert(kChunksPerRow >= 8, "the XOR swizzle permutes 8 chunks per row");
  static_assert(kBlockN % kRowsPerCopy == 0, "a tile is a whole number of warp copies");

  // Every warp streams kStages - 1 tiles ahead; the block's first kPrefetchTiles tiles (each
  // warp's first kStages - 1) are prefetched into L2 before the sequence length arrives.
  static constexpr int kPrefetchTiles = kWarps * (kStages - 1);
  // 128-byte L2 lines per K (or V) row.
  static constexpr int kLinesPerRow = cmax(1, kHeadDim * kElementBytes / 128);

  // Epilogue: each warp's normalised O rows (float, padded by 8 to spread banks) in the warp's own
  // pipeline bytes (a warp reuses them once its own last tile is consumed: no block barrier before
  // the write); after the pipeline and the page masks, per row the warps' lse.
  static constexpr int kMergeRowStride = kHeadDim + 8;
  static constexpr size_t kPipelineBytes = size_t(kWarps) * kStages * kStageBytes;
  static constexpr int kMergeWarpStride = kStages * kStageBytes / int(sizeof(float));  // floats per warp's sO
  static constexpr int kMergeLseFloats = kRows * kWarps;                                // sLse
  static constexpr size_t kDataBytes = kPipelineBytes;
  static constexpr size_t kMaskBytes = size_t(kWarps) * kStages * sizeof(uint32_t);
  static constexpr size_t kSmemBytes = kDataBytes + kMaskBytes + size_t(kMergeLseFloats) * sizeof(float);
  static_assert(kRows * kMergeRowStride <= kMergeWarpStride, "a warp's O rows fit in its pipeline bytes");
  static_assert(kSmemBytes % 16 == 0, "the cluster kernel's inbox after it takes 16-byte stores");

  // Cluster kernel: an inbox its peers write their partial rows and lse into (cluster_kernel.cuh),
  // after the bytes of the split kernel, never overlapping the pipeline (peers may write while
  // this block still streams its tiles).
  static constexpr uint32_t kInboxRowBytes = (kHeadDim + 1) * sizeof(float);  // a pushed row: O and lse
  static constexpr size_t kInboxBytes = size_t(kInboxSlots) * kInboxRowBytes;
  static constexpr size_t kInboxBarrierOffset = kSmemBytes + kInboxBytes;  // the inbox's mbarrier (8 bytes)
  static constexpr size_t kClusterSmemBytes = kInboxBarrierOffset + 16;
  static_assert(kInboxBarrierOffset % 8 == 0, "an mbarrier is 8-byte aligned");
  static constexpr int kSmemReservedPerBlock = 1024;  // the runtime's share of each block's smem
  static constexpr int kBlocksPerSm = int(kSmemPerSm / (kClusterSmemBytes + kSmemReservedPerBlock));
  static_assert(kBlocksPerSm >= 1, "decode_fast: a block must fit in one SM's shared memory");
  static_assert(kSmemPerSm / (kSmemBytes + kSmemReservedPerBlock) == kBlocksPerSm,
                "the split and cluster kernels keep the same blocks per SM");
};

// Pass 2 (combine kernel): one warp per output row.
struct CombineConfig {
  static constexpr int kWarps = 4;
  static constexpr int kThreads = kWarps * kWarpSize;
};

SFA_DF_HOST_DEVICE int ceil_div(int64_t a, int64_t b) { return static_cast<int>((a + b - 1) / b); }

// Query heads per KV head times new tokens: the rows packed into the M dimension.
SFA_DF_HOST_DEVICE int packed_rows(const DecodeProblem& p) {
  return (p.heads / p.heads_kv) * p.seqlen_q;
}
SFA_DF_HOST_DEVICE int row_tiles(const DecodeProblem& p) {
  return ceil_div(packed_rows(p), kRowsPerBlock);
}

}  // namespace sfa::cuda::decode_fast
