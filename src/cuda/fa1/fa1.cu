// FlashAttention-1, SIMT float32 (Dao et al. 2022, "FlashAttention", Algorithm 1).
//
// Paper -> code (line numbers of Algorithm 1)
//   2   O = 0, l = 0, m = -inf in HBM        scratch.o / .l / .m, float32, in the caller's workspace
//   5   for 1 <= j <= Tc  (outer)            n_block: K_j, V_j (Bc = kBlockN rows) -> sK, sV
//   7     for 1 <= i <= Tr  (inner)          m_block: Q_i (Br = kBlockM rows) -> sQ
//   8       load Q_i, O_i, l_i, m_i          O_i, l_i, m_i read back from HBM on every visit
//   9       S_ij = Q_i K_j^T                 rS (registers), log2 domain, masked to -inf
//   10      m~ = rowmax(S), P~ = exp(S - m~), l~ = rowsum(P~)           P~ -> sP
//   11      m_new = max(m_i, m~), l_new = e^(m_i - m_new) l_i + e^(m~ - m_new) l~
//   12      O_i = diag(l_new)^-1 (diag(l_i) e^(m_i - m_new) O_i + e^(m~ - m_new) P~ V_j) -> HBM
//   13      l_i = l_new, m_i = m_new -> HBM
// After the outer loop each row's O is final: out = O (rounded to the dtype), lse = m + log(l).
// O is normalised on every visit and travels through HBM between outer iterations; FA-2
// (fa2/fa2.cu) swaps the loops to keep it on chip.
//
// Where O, l, m live: Algorithm 1 keeps them in HBM, and an entry point may not allocate, so they
// are float32 scratch in the caller's workspace (fa1_scratch.h; attention_workspace_size() asks
// for it). Keeping O in `out` instead would round it to fp16/bf16 on every visit.
//
// Grid: the paper runs one thread block per (batch, head). When batch * heads cannot fill the GPU,
// the query blocks of a head are dealt to q_groups thread blocks (block g takes i = g, g + q_groups,
// ...); each runs Algorithm 1 unchanged on its rows, which are independent of all other rows.
// blockIdx.x = (b * heads + h) * q_groups + g.
// Block: 256 threads, 16 row groups (ty) of 16 lanes (tx) (common/simt_tile.cuh); thread (ty, tx)
// owns rows ty * kR + i of Q_i, score columns tx + 16 j and O columns 64 g + 4 tx + e, so it reads
// and writes the same O elements on every visit (no other thread touches them until the end).
// Shared memory (float32, rows padded by 4 floats against bank conflicts):
//   sK [Bc][head_dim + 4] | sV [Bc][head_dim + 4] | sQ [Br][head_dim + 4] | sP [Br][Bc + 4]
//   K_j and V_j stay resident for the whole inner loop, so head dims above 64 use Bc = 32.
#include <algorithm>

#include "common/attention_math.h"
#include "cuda/common/check.cuh"
#include "cuda/common/simt_tile.cuh"
#include "cuda/fa1/fa1_scratch.h"
#include "cuda/launchers.h"

namespace sfa::cuda {
namespace {

using namespace simt;

template <int kD>
struct Fa1Config {
  static constexpr int kBlockM = 64;                        // Br
  static constexpr int kBlockN = kD <= 64 ? 64 : 32;        // Bc
  static constexpr int kR = kBlockM / kRowGroups;
  static constexpr int kC = kBlockN / kLanesPerRow;
  static constexpr int kGroups = kD / kDColsPerGroup;
  static constexpr int kPPitch = kBlockN + kPad;
  // Two blocks per SM where shared memory allows (head_dim <= 128): caps registers at 128.
  static constexpr int kMinBlocksPerSm = kD <= 128 ? 2 : 1;
  static size_t smem_bytes(int head_dim) {
    return sizeof(float) * ((2 * kBlockN + kBlockM) * (head_dim + kPad) + kBlockM * kPPitch);
  }
};
// Thread blocks to aim for: enough for every SM to hold a few.
constexpr int kBlocksPerSm = 4;

template <typename T, int kD>
__global__ void __launch_bounds__(kTileThreads, Fa1Config<kD>::kMinBlocksPerSm)
    fa1_kernel(const AttentionProblem p, const ScoreTransform score, const Fa1Scratch scratch,
               const int q_groups) {
  using Cfg = Fa1Config<kD>;
  constexpr int kR = Cfg::kR, kC = Cfg::kC, kBlockM = Cfg::kBlockM, kBlockN = Cfg::kBlockN;
  extern __shared__ float4 smem_vec[];
  const int d = p.head_dim, pitch = d + kPad;
  const int64_t ld_o = d;  // row stride of the O scratch (64-bit: rows * head_dim may pass 2^31)
  float* sK = reinterpret_cast<float*>(smem_vec);
  float* sV = sK + kBlockN * pitch;
  float* sQ = sV + kBlockN * pitch;
  float* sP = sQ + kBlockM * pitch;

  const int group = blockIdx.x % q_groups;
  const int h = (blockIdx.x / q_groups) % p.heads;
  const int b = blockIdx.x / q_groups / p.heads;
  const HeadView<T> hv = head_view<T>(p, b, h);
  const int m_blocks = (hv.len_q + kBlockM - 1) / kBlockM;
  if (group >= m_blocks) return;  // no query block for this group: leave before any barrier
  const int tid = threadIdx.x, tx = tid % kLanesPerRow, ty = tid / kLanesPerRow;
  const int64_t cell0 = h * scratch.rows + hv.packed_row0;  // scratch row of query 0
  float* gO = scratch.o + cell0 * d;
  float* gM = scratch.m + cell0;
  float* gL = scratch.l + cell0;
  auto rows_of = [&](int m_block) { return min(kBlockM, hv.len_q - m_block * kBlockM); };

  // Line 2: O = 0, l = 0, m = -inf for this block's rows.
  for (int m_block = group; m_block < m_blocks; m_block += q_groups) {
    const int row0 = m_block * kBlockM, rows = rows_of(m_block);
    for (int e = tid; e < rows * d / 4; e += kTileThreads) {
      reinterpret_cast<float4*>(gO + row0 * ld_o)[e] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
    for (int r = tid; r < rows; r += kTileThreads) gM[row0 + r] = -INFINITY, gL[row0 + r] = 0.0f;
  }
  __syncthreads();  // the initial O, l, m are visible to every thread of the block

  const KeyRange seq_first = visible_keys(0, hv.len_q, hv.len_k, p.window_left, p.window_right);
  const KeyRange seq_last = visible_keys(hv.len_q - 1, hv.len_q, hv.len_k, p.window_left, p.window_right);
  const int n_begin = static_cast<int>(seq_first.lo / kBlockN);
  const int n_end = seq_last.hi > seq_first.lo ? static_cast<int>((seq_last.hi + kBlockN - 1) / kBlockN) : n_begin;

  for (int n_block = n_begin; n_block < n_end; ++n_block) {  // line 5
    const int key0 = n_block * kBlockN, keys = min(kBlockN, hv.len_k - key0);
    __syncthreads();  // the previous K_j, V_j are no longer read
    load_tile<T, kBlockN>(sK, pitch, hv.k + key0 * hv.k_ld, hv.k_ld, keys, d, tid);  // line 6
    load_tile<T, kBlockN>(sV, pitch, hv.v + key0 * hv.v_ld, hv.v_ld, keys, d, tid);

    for (int m_block = group; m_block < m_blocks; m_block += q_groups) {  // line 7
      const int row0 = m_block * kBlockM, rows = rows_of(m_block);
      const KeyRange first = visible_keys(row0, hv.len_q, hv.len_k, p.window_left, p.window_right);
      const KeyRange last = visible_keys(row0 + rows - 1, hv.len_q, hv.len_k, p.window_left, p.window_right);
      if (key0 >= last.hi || key0 + kBlockN <= first.lo || last.hi <= first.lo) continue;  // all masked
      __syncthreads();  // the previous Q_i and P~ are no longer read
      load_tile<T, kBlockM>(sQ, pitch, hv.q + row0 * hv.q_ld, hv.q_ld, rows, d, tid);  // line 8
      __syncthreads();  // Q_i (and on the first visit K_j, V_j) is in shared memory

      float rS[kR][kC];
      tile_qk(rS, sQ, sK, pitch, d, ty, tx);  // line 9
      float c_old[kR], c_new[kR];             // line 12's factors of O_i and of P~ V_j
#pragma unroll
      for (int i = 0; i < kR; ++i) {
        const int r = row0 + ty * kR + i;
        const KeyRange range = r < hv.len_q ? visible_keys(r, hv.len_q, hv.len_k, p.window_left, p.window_right)
                                            : KeyRange{0, 0};
        float m_tile = -INFINITY;  // line 10: m~ = rowmax(S)
#pragma unroll
        for (int j = 0; j < kC; ++j) {
          const int key = key0 + tx + kLanesPerRow * j;
          rS[i][j] = key >= range.lo && key < range.hi ? score(rS[i][j]) : -INFINITY;
          m_tile = fmaxf(m_tile, rS[i][j]);
        }
        m_tile = group_max<kLanesPerRow>(m_tile);
        float l_tile = 0.0f;  // l~ = rowsum(P~), P~ = exp2(S - m~)
#pragma unroll
        for (int j = 0; j < kC; ++j) {
          const float prob = m_tile == -INFINITY ? 0.0f : exp2f(rS[i][j] - m_tile);
          l_tile += prob;
          sP[(ty * kR + i) * Cfg::kPPitch + tx + kLanesPerRow * j] = prob;
        }
        l_tile = group_sum<kLanesPerRow>(l_tile);
        // Line 8 for m_i, l_i: lane tx = 0 of the row reads them and is the only one to write them.
        float m_i = -INFINITY, l_i = 0.0f;
        if (tx == 0 && r < hv.len_q) m_i = gM[r], l_i = gL[r];
        m_i = __shfl_sync(0xffffffffu, m_i, 0, kLanesPerRow);
        l_i = __shfl_sync(0xffffffffu, l_i, 0, kLanesPerRow);
        const float m_new = fmaxf(m_i, m_tile);  // line 11
        const float a_old = m_new == -INFINITY ? 0.0f : exp2f(m_i - m_new);
        const float a_new = m_new == -INFINITY ? 0.0f : exp2f(m_tile - m_new);
        const float l_new = a_old * l_i + a_new * l_tile;
        const float inv_l_new = l_new > 0.0f ? 1.0f / l_new : 0.0f;
        c_old[i] = a_old * l_i * inv_l_new;
        c_new[i] = a_new * inv_l_new;
        if (tx == 0 && r < hv.len_q) gM[r] = m_new, gL[r] = l_new;  // line 13
      }
      __syncthreads();  // P~ is in shared memory

      float rPV[kR][4 * Cfg::kGroups] = {};
      tile_pv<kR, Cfg::kGroups, kBlockN>(rPV, sP, Cfg::kPPitch, sV, pitch, d, ty, tx);  // P~ V_j
#pragma unroll
      for (int i = 0; i < kR; ++i) {  // line 12: O_i from HBM, updated, back to HBM
        const int r = row0 + ty * kR + i;
        if (r >= hv.len_q) continue;
#pragma unroll
        for (int g = 0; g < Cfg::kGroups; ++g) {
          const int col = g * kDColsPerGroup + 4 * tx;
          if (col >= d) continue;
          float4* o = reinterpret_cast<float4*>(gO + r * ld_o + col);
          const float4 prev = *o;
          *o = make_float4(c_old[i] * prev.x + c_new[i] * rPV[i][4 * g + 0],
                           c_old[i] * prev.y + c_new[i] * rPV[i][4 * g + 1],
                           c_old[i] * prev.z + c_new[i] * rPV[i][4 * g + 2],
                           c_old[i] * prev.w + c_new[i] * rPV[i][4 * g + 3]);
        }
      }
    }
  }
  __syncthreads();  // every O, l, m of this block is final and visible to all its threads

  // out = O rounded to the dtype; lse = m + log(l) (natural log; -inf for a row that saw no key).
  for (int m_block = group; m_block < m_blocks; m_block += q_groups) {
    const int row0 = m_block * kBlockM, rows = rows_of(m_block);
    for (int e = tid; e < rows * d / 4; e += kTileThreads) {
      const int r = row0 + e / (d / 4), col = (e % (d / 4)) * 4;
      const float4 o = *reinterpret_cast<const float4*>(gO + r * ld_o + col);
      const float v[4] = {o.x, o.y, o.z, o.w};
      store_vec<4>(hv.out + r * hv.out_ld + col, v);
    }
    if (hv.lse == nullptr) continue;
    for (int r = row0 + tid; r < row0 + rows; r += kTileThreads) {
      hv.lse[r] = gL[r] > 0.0f ? (gM[r] + log2f(gL[r])) * kLn2 : -INFINITY;
    }
  }
}

template <typename T, int kD>
Status launch_typed(const AttentionProblem& p, void* workspace, cudaStream_t stream) {
  using Cfg = Fa1Config<kD>;
  int device = 0;
  SFA_CUDA_TRY(cudaGetDevice(&device));
  DeviceInfo info;
  SFA_RETURN_IF_ERROR(device_info(device, &info));
  const int m_blocks = (p.seqlen_q + Cfg::kBlockM - 1) / Cfg::kBlockM;
  const int64_t heads = static_cast<int64_t>(p.batch) * p.heads;
  const int64_t wanted = (static_cast<int64_t>(kBlocksPerSm) * info.sm_count + heads - 1) / heads;
  const int q_groups = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(wanted, m_blocks)));
  const int64_t blocks = heads * q_groups;
  if (blocks > INT32_MAX) {
    return Status(StatusCode::kUnsupported, "kernel 'fa1': batch * heads = " + std::to_string(heads) +
                                                " thread blocks exceed the grid limit (2^31 - 1)");
  }
  const size_t smem = Cfg::smem_bytes(p.head_dim);
  auto kernel = fa1_kernel<T, kD>;
  SFA_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(smem)));
  kernel<<<static_cast<unsigned>(blocks), kTileThreads, smem, stream>>>(
      p, make_score_transform(p.softmax_scale, p.softcap), fa1_bind_scratch(p, workspace), q_groups);
  return check_launch("fa1_kernel");
}

}  // namespace

size_t fa1_workspace_size(const AttentionProblem& p) { return fa1_scratch_bytes(p); }

Status launch_fa1(const AttentionProblem& p, void* workspace, cudaStream_t stream) {
  return dispatch_dtype(p.dtype, [&](auto type) {
    using T = typename decltype(type)::type;
    return dispatch_head_dim(p.head_dim, [&](auto kd) {
      return launch_typed<T, decltype(kd)::value>(p, workspace, stream);
    });
  });
}

}  // namespace sfa::cuda
