// FlashAttention-2's inner loop on the CPU: one block of query rows against a stream of key
// tiles, with the online softmax (paper notation: Br = kBlockM query rows, Bc = kBlockN keys).
//
// For every key tile (K_j, V_j) the block computes, per query row,
//   S   = Q K_j^T                        (log2 domain: Q is pre-scaled by scale * log2(e))
//   m'  = max(m, rowmax(S)),  alpha = exp2(m - m'),  P = exp2(S - m')
//   l   = alpha * l + rowsum(P),  O = alpha * O + P V_j
// and at the end out = O / l, lse = (m + log2 l) * ln 2. All in float32; memory is O(tile).
//
// Tiles fully inside every row's visible keys skip the mask; only the tiles that straddle a
// boundary (the causal diagonal, window edges, split edges) apply it.
#pragma once

#include <cstdint>
#include <vector>

#include "common/attention_math.h"

namespace sfa::cpu {

constexpr int kBlockM = 64;  // Br: query rows per block
constexpr int kBlockN = 64;  // Bc: keys per tile

class TileAttention {
 public:
  TileAttention(int head_dim, float softmax_scale, float softcap);

  // A new block of `rows` <= kBlockM query rows: fill query(r) with q_r and set_keys(r, ...)
  // with the keys row r sees, then prepare().
  void begin(int rows);
  float* query(int r) { return q_.data() + r * head_dim_; }
  void set_keys(int r, KeyRange keys) { keys_[r] = keys; }
  void prepare();
  // The keys any row of the block sees (empty when none does).
  KeyRange span() const;

  // A key tile: fill key(j) and value(j) for j < n (keys j0 .. j0 + n - 1), then attend(j0, n).
  float* key(int j) { return k_.data() + j * head_dim_; }
  float* value(int j) { return v_.data() + j * head_dim_; }
  void attend(int64_t j0, int n);

  // Row r of the result: out[0, head_dim) = O / l and *lse (natural log, -inf for no key).
  void finish(int r, float* out, float* lse) const;

 private:
  void scores(int n);
  void mask(int64_t j0, int n);
  void softmax_pv(int n);

  int head_dim_;
  float scale_;    // applied to Q: scale * log2(e), or scale alone when softcap is on
  float softcap_;  // 0: off
  int rows_ = 0;
  std::vector<float> q_;   // [kBlockM][head_dim]
  std::vector<float> k_;   // [kBlockN][head_dim]
  std::vector<float> v_;   // [kBlockN][head_dim]
  std::vector<float> s_;   // [kBlockM][kBlockN]: scores, then probabilities
  std::vector<float> o_;   // [kBlockM][head_dim]: unnormalised output
  std::vector<float> pv_;  // [head_dim]: one row's P V over the current tile
  std::vector<KeyRange> keys_;
  std::vector<OnlineSoftmax> state_;
};

}  // namespace sfa::cpu
