// Math shared by the CPU backend and the CUDA kernels (host and device): the visibility mask,
// softcap, and the online-softmax state with its merge.
//
// One definition of "which keys a query sees" and one of "how two partial softmaxes combine"
// keep every backend computing the same function.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define SFA_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define SFA_HOST_DEVICE inline
#endif

namespace sfa {

constexpr float kLog2e = 1.4426950408889634f;  // log2(e): exp(x) = exp2(x * kLog2e)
constexpr float kLn2 = 0.6931471805599453f;     // ln(2):   log(x) = log2(x) * kLn2

// The keys query row i may see, as a half-open range [lo, hi) clipped to [0, seqlen_k).
// Bottom-right alignment: query i sits at key position i + (seqlen_k - seqlen_q).
// window_left / window_right < 0 mean unbounded (causal is window_right = 0).
struct KeyRange {
  int64_t lo;
  int64_t hi;
  SFA_HOST_DEVICE bool empty() const { return hi <= lo; }
};

SFA_HOST_DEVICE KeyRange visible_keys(int64_t i, int64_t seqlen_q, int64_t seqlen_k,
                                      int64_t window_left, int64_t window_right) {
  const int64_t diag = i + seqlen_k - seqlen_q;  // the key aligned with query i
  int64_t lo = window_left < 0 ? 0 : diag - window_left;
  int64_t hi = window_right < 0 ? seqlen_k : diag + window_right + 1;
  lo = lo < 0 ? 0 : lo;
  hi = hi > seqlen_k ? seqlen_k : hi;
  return {lo, hi};
}

// softcap * tanh(s / softcap), the score capping of Gemma-2 / Grok; identity when softcap <= 0.
SFA_HOST_DEVICE float apply_softcap(float s, float softcap) {
  return softcap > 0.0f ? softcap * tanhf(s / softcap) : s;
}
SFA_HOST_DEVICE double apply_softcap(double s, double softcap) {
  return softcap > 0.0 ? softcap * tanh(s / softcap) : s;
}

// Merge of partial softmax results over disjoint key sets (Flash-Decoding's combine, FlashInfer's
// "merge state"). A partial result is (o, lse): o = softmax-weighted mean of V over its keys,
// lse = log(sum exp(s)) over them; an empty key set has lse = -inf and contributes nothing.
//   lse = log(sum_s exp(lse_s)),  o = sum_s exp(lse_s - lse) * o_s
// Use: MergeState st; for each split: st.add(lse_s) ... then weight_s = st.weight(lse_s).
struct MergeState {
  float max_lse = -INFINITY;
  float sum = 0.0f;  // sum_s exp(lse_s - max_lse)

  // Pass 1 over the splits: the running maximum and rescaled sum (one pass, online).
  SFA_HOST_DEVICE void add(float lse_s) {
    if (lse_s == -INFINITY) return;
    if (lse_s > max_lse) {
      sum = sum * expf(max_lse - lse_s) + 1.0f;
      max_lse = lse_s;
    } else {
      sum += expf(lse_s - max_lse);
    }
  }
  // The merged lse; -inf when every split was empty.
  SFA_HOST_DEVICE float lse() const { return merged_lse(max_lse, sum); }
  // Pass 2: the weight of split s in the merged output (0 for an empty split or empty row).
  SFA_HOST_DEVICE float weight(float lse_s) const {
    return (sum > 0.0f && lse_s != -INFINITY) ? unnormalised_weight(lse_s, max_lse) / sum : 0.0f;
  }

  // The same merge when every split's lse is at hand (kernels that hold them all in registers or
  // shared memory: no serial chain): max_lse = the largest lse_s, then split s weighs
  // unnormalised_weight(lse_s, max_lse) / sum of those, and the merged lse is
  // merged_lse(max_lse, that sum). An empty split (lse -inf) weighs 0; with every split empty
  // (max_lse -inf) every weight is 0 and the lse -inf.
  SFA_HOST_DEVICE static float unnormalised_weight(float lse_s, float max_lse) {
    return max_lse == -INFINITY ? 0.0f : expf(lse_s - max_lse);
  }
  SFA_HOST_DEVICE static float merged_lse(float max_lse, float weight_sum) {
    return weight_sum > 0.0f ? max_lse + logf(weight_sum) : -INFINITY;
  }
};

// The library's exp2 (exp2f), the default of OnlineSoftmax; a GPU kernel may pass the special
// function unit's instead (cuda/common/fast_math.cuh).
struct LibraryExp2 {
  SFA_HOST_DEVICE float operator()(float x) const { return exp2f(x); }
};

// Online softmax for one query row (FlashAttention's running max m and running sum l), in the
// base-2 domain the kernels use: scores arrive already multiplied by log2(e).
//   m_new = max(m, rowmax(S)); alpha = exp2(m - m_new); l = alpha * l + rowsum(exp2(S - m_new))
// The output accumulator is rescaled by the same alpha; at the end out = acc / l and
// lse = (m + log2(l)) * ln(2).
struct OnlineSoftmax {
  float m = -INFINITY;  // running max of log2-domain scores seen so far
  float l = 0.0f;       // running sum of exp2(score - m)

  // Raise the running max to include `tile_max`; returns alpha, the factor by which the previous
  // sum and accumulator must be scaled (1 when the max did not move, 0 on the first tile).
  template <class Exp2 = LibraryExp2>
  SFA_HOST_DEVICE float rescale(float tile_max, Exp2 exp2 = {}) {
    const float m_new = tile_max > m ? tile_max : m;
    // Both -inf (nothing visible yet): keep alpha finite.
    const float alpha = (m_new == -INFINITY) ? 1.0f : exp2(m - m_new);
    m = m_new;
    l *= alpha;
    return alpha;
  }
  // p = exp2(s - m) for a score s of the current tile (0 for masked scores, s = -inf).
  template <class Exp2 = LibraryExp2>
  SFA_HOST_DEVICE float prob(float s, Exp2 exp2 = {}) const {
    return m == -INFINITY ? 0.0f : exp2(s - m);
  }
  SFA_HOST_DEVICE float inv_l() const { return l > 0.0f ? 1.0f / l : 0.0f; }
  SFA_HOST_DEVICE float lse() const { return l > 0.0f ? (m + log2f(l)) * kLn2 : -INFINITY; }
};

}  // namespace sfa
