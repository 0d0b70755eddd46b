// Tile configuration of the tensor-core FlashAttention-2 kernel, one entry per head_dim.
// Plain C++ (no CUDA headers) so kernel selection can read the shared-memory need too.
//
// Measured on the H100 (docs/fa2_mma.md holds every configuration tried and its TFLOP/s):
//   head_dim <= 64:   128 x 64 tiles, 4 warps (32 query rows per warp). 128 x 128 is 2-10% faster
//                     without a mask but needs more than 255 registers (ptxas spills), and 3-12%
//                     slower with the causal mask at seqlen 512-2k, where diagonal tiles weigh.
//   head_dim 96:      128 x 64 tiles on 8 warps (on 4 warps ptxas spills ~100 bytes)
//   head_dim 128:     128 x 64 tiles, 4 warps: 64 KB of shared memory, two blocks per SM
//                     (128 x 32: 4-10% slower; 64 x 64: 5-20% slower; 128 x 64 on 8 warps: 15-25% slower)
//   head_dim 192:     128 x 64 tiles, 8 warps (16 query rows per warp keep O in registers)
//   head_dim 256:     64 x 64 tiles on 4 warps as 2 x 2 warps: each warp pair shares 32 query rows,
//                     splitting the keys of S and the columns of O (32 rows per warp halve the K/V
//                     fragment reads of 16-row warps; O of 32 rows x 128 columns fits the registers):
//                     4-7% faster than 64 x 64 on 16-row warps without a mask, 1-10% with it, and
//                     3-16% faster than 128 x 64 on 8 warps pairs or not.
#pragma once

#include <cstddef>

namespace sfa::cuda {

struct Fa2MmaTile {
  int block_m;  // Br: query rows per block
  int block_n;  // Bc: key rows per iteration
  int warps;
  int warps_n;  // 1: a warp owns whole rows; 2: warp pairs split the keys of S and the columns of O
};

// `causal`: the instantiation for a bounded key range (causal or a sliding window).
constexpr Fa2MmaTile fa2_mma_tile(int head_dim, bool causal) {
  return head_dim <= 64    ? Fa2MmaTile{128, 64, 4, 1}
         : head_dim <= 96  ? Fa2MmaTile{128, 64, 8, 1}
         : head_dim <= 128 ? Fa2MmaTile{128, 64, 4, 1}
         : head_dim <= 192 ? Fa2MmaTile{128, 64, 8, 1}
                           : (causal ? Fa2MmaTile{64, 64, 4, 2} : Fa2MmaTile{64, 64, 4, 2});
}

// Shared memory of one block: a Q tile, one K tile and one V tile of 16-bit elements; with warp
// pairs also P [Br, Bc] (16-bit) and two float row statistics per pair member and row; the
// running row sums (one float per thread and row it holds: 2 warps_n floats per query row) and
// two 8-byte copy sources per thread.
constexpr size_t fa2_mma_smem_bytes(int block_m, int block_n, int head_dim, int warps, int warps_n) {
  return sizeof(short) * static_cast<size_t>(head_dim) * (block_m + 2 * block_n) +
         (warps_n > 1 ? sizeof(short) * static_cast<size_t>(block_m) * block_n +
                            2 * sizeof(float) * static_cast<size_t>(warps_n) * block_m
                      : 0) +
         sizeof(float) * 4 * static_cast<size_t>(warps_n) * block_m + 2 * sizeof(void*) * 32 * static_cast<size_t>(warps);
}
constexpr size_t fa2_mma_smem_bytes(int head_dim, bool causal) {
  return fa2_mma_smem_bytes(fa2_mma_tile(head_dim, causal).block_m, fa2_mma_tile(head_dim, causal).block_n,
                            head_dim, fa2_mma_tile(head_dim, causal).warps, fa2_mma_tile(head_dim, causal).warps_n);
}

}  // namespace sfa::cuda
