// Tile configuration of the tensor-core FlashAttention-2 kernel, one entry per head_dim.
// Plain C++ (no CUDA headers) so kernel selection can read the shared-memory need too.
//
// Measured on the H100 (docs/fa2_mma.md holds every configuration tried and its TFLOP/s):
//   head_dim <= 64:   128 x 64 tiles, 4 warps (32 query rows per warp). 128 x 128 needs more than 255
//                     registers (ptxas spills) and, without a mask, is 4% faster at seqlen 512 but
//                     1-3% slower from 2k on (third round; 3-12% slower with the causal mask at
//                     512-2k in the first). K and V double-buffered (kv_stages 2): causal +0.6-4.5% at
//                     every length; without a mask +3-4% at 512, +1.5-3% at 1k and -1..+0.6% from 2k
//                     (fifth round, two calls). 48 KB per block: two blocks per SM still fit on every
//                     target (sm86/sm89: 100 KB per SM), as the registers allow no more. S by 16-row
//                     tile: +2% at 512, +0.5-1.5% beyond (seventh round).
//   head_dim 96:      128 x 64 tiles on 8 warps (on 4 warps ptxas spills ~100 bytes)
//   head_dim 128:     128 x 64 tiles, 4 warps: 68 KB of shared memory, two blocks per SM
//                     (128 x 32: 4-10% slower; 64 x 64: 5-20% slower; 128 x 64 on 8 warps: 15-25% slower).
//                     Double-buffered K and V need 100 KB per block: more than sm86/sm89 allow (99 KB)
//                     and one block per SM on sm80, so only the sm_90a binary uses them, without a
//                     mask (the `sm90` tiles below).
//                     The state in shared memory and look-ahead 1 keep ptxas from spilling (without
//                     a mask look-ahead 1 is also 1-4% faster than 2); at head_dim 64 the same state
//                     in shared memory is 7-10% slower, so only head_dim 128 and 256 (where
//                     registers are short) keep it there.
//   head_dim 192:     128 x 64 tiles, 8 warps (16 query rows per warp keep O in registers)
//   head_dim 256:     64 x 64 tiles on 4 warps as 2 x 2 warps: each warp pair shares 32 query rows,
//                     splitting the keys of S and the columns of O (32 rows per warp halve the K/V
//                     fragment reads of 16-row warps; O of 32 rows x 128 columns fits the registers):
//                     4-7% faster than 64 x 64 on 16-row warps without a mask, 1-10% with it, and
//                     3-16% faster than 128 x 64 on 8 warps pairs or not. With a mask the state
//                     in registers is 2-4% faster than in shared memory; without, 1-4% slower.
//                     Without a mask S by 16-row tile (+1-2%); with it, it spills or is 3-5% slower.
#pragma once

#include <cstddef>

namespace sfa::cuda {

struct Fa2MmaTile {
  int block_m;  // Br: query rows per block
  int block_n;  // Bc: key rows per iteration
  int warps;
  int warps_n;  // 1: a warp owns whole rows; 2: warp pairs split the keys of S and the columns of O
  // Keep the running row sums and the copy sources in shared memory between key blocks and
  // recompute the block's coordinates for the epilogue, rather than holding them in registers
  // through the key loop (where the registers are short: head_dim 128 and 256).
  bool state_in_smem;
  // How many products ahead the matrix products load their B fragments (mma_pipelined; from 2 on
  // the A fragments one k-step ahead too).
  int ahead;
  // Copy the first key block's V with Q and K before the key loop (one memory latency at the
  // block's start instead of two in a row) rather than during the first S = Q K^T. Measured:
  // +1-3.5% without a mask at head_dim 64, within 1% at 128/256; with a causal mask 1-3% slower at
  // 512-1k tokens (head_dim 128, 256; head_dim 64 within 1%), where the first key block is the
  // diagonal one and the start's copies are what the block waits for.
  bool prologue_v;
  // K and V tiles in shared memory: 1 (one of each: V_n streams in during S = Q K_n^T and K_{n-1}
  // during the softmax and P V_n, two barriers per key block) or 2 (double-buffered: K_{n-1} and
  // V_{n-1} are issued after S = Q K_n^T and stream in until the next key block starts, one barrier
  // per key block; the first key block's V then always comes with Q and K).
  int kv_stages;
  // S = Q K^T one 16-row tile after the other (each reads K's fragments) rather than all tiles per
  // K fragment: the first tile's scores are complete early, so its softmax runs while the second
  // tile's products issue. Only where no barrier separates S from the softmax (double-buffered K
  // and V, warp pairs). Measured (bf16, H100): +2% at head_dim 64 / 512 on top of the branch-free
  // plain-score step, +0.5-1.5% beyond; head_dim 256 pairs without a mask +1-2%; with a causal
  // mask at head_dim 256 ptxas spills (state in registers) or it is 3-5% slower (state in shared
  // memory); at head_dim 128 single-buffered within 1%.
  bool s_by_tile;
};

// `causal`: the instantiation for a bounded key range (causal or a sliding window). `sm90`: the
// tiles of the sm_90a binary (compute capability 9.0, 228 KB of shared memory per SM), which differ
// at head_dim 128 without a mask: double-buffered K and V (100 KB per block; two blocks per SM fit
// on sm90 only; sm86/sm89 allow 99 KB per block, sm80 fits one such block per SM). Measured on the
// H100 (bf16 and fp16, same call): +3-4% at every length from 512 to 8k, +1-4% at 16k; with a causal
// mask 1-3% slower and 32 bytes of ptxas spills, so causal keeps one K and one V tile.
// Whether a device of compute capability sm_arch (major * 10 + minor) runs the sm_90a binary's tiles:
// the launcher sizes shared memory and selection checks it by this.
constexpr bool fa2_mma_sm90_tiles(int sm_arch) { return sm_arch == 90; }

constexpr Fa2MmaTile fa2_mma_tile(int head_dim, bool causal, bool sm90 = false) {
  return head_dim <= 64    ? Fa2MmaTile{128, 64, 4, 1, false, 2, true, 2, true}
         : head_dim <= 96  ? Fa2MmaTile{128, 64, 8, 1, false, 2, !causal, 1, false}
         : head_dim <= 128 ? Fa2MmaTile{128, 64, 4, 1, true, 1, !causal, sm90 && !causal ? 2 : 1, false}
         : head_dim <= 192 ? Fa2MmaTile{128, 64, 8, 1, false, 2, !causal, 1, false}
                           : Fa2MmaTile{64, 64, 4, 2, !causal, 2, !causal, 1, !causal};
}

// Shared memory of one block: a Q tile, kv_stages K tiles and as many V tiles of 16-bit elements; with warp
// pairs also P [Br, Bc] (16-bit) and two float row statistics per pair member and row; with
// state_in_smem the running row sums (one float per thread and row it holds: the 4 threads of a
// quad, times warps_n, per query row), two 8-byte copy sources per thread and the block's scalars
// (kFa2MmaScalarBytes); four ints per warp (the key blocks its rows see).
constexpr size_t kFa2MmaScalarBytes = 48;
constexpr size_t fa2_mma_smem_bytes(int block_m, int block_n, int head_dim, int warps, int warps_n,
                                    bool state_in_smem, int kv_stages) {
  return sizeof(short) * static_cast<size_t>(head_dim) * (block_m + 2 * block_n * kv_stages) +
         (warps_n > 1 ? sizeof(short) * static_cast<size_t>(block_m) * block_n +
                            2 * sizeof(float) * static_cast<size_t>(warps_n) * block_m
                      : 0) +
         (state_in_smem ? sizeof(float) * 4 * static_cast<size_t>(warps_n) * block_m +
                              2 * sizeof(void*) * 32 * static_cast<size_t>(warps) + kFa2MmaScalarBytes
                        : 0) +
         4 * sizeof(int) * static_cast<size_t>(warps);
}
constexpr size_t fa2_mma_smem_bytes(int head_dim, bool causal, bool sm90 = false) {
  const Fa2MmaTile t = fa2_mma_tile(head_dim, causal, sm90);
  return fa2_mma_smem_bytes(t.block_m, t.block_n, head_dim, t.warps, t.warps_n, t.state_in_smem, t.kv_stages);
}

}  // namespace sfa::cuda
