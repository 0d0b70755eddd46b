// Flash-Decoding, SIMT (Dao, Haziza, Massa, Sizov 2023): split the KV sequence, attend to each
// split in parallel, merge the partial results by their log-sum-exp (decode_combine.cu).
//
// Paper -> code
//   one new query q (per sequence, head, new token i) against a long KV cache of len keys
//   split s of num_splits: a contiguous chunk of the keys q sees      k_begin .. k_end
//   partial O_s = softmax(q K_s^T) V_s,  LSE_s = log sum exp(q K_s^T)  -> p.workspace_out / _lse
//   final  O = sum_s exp(LSE_s - LSE) O_s,  LSE = log sum_s exp(LSE_s)  (MergeState, combine kernel)
// With num_splits = 1 the split kernel writes out and lse itself and no combine runs.
// What changes from FA-2 (fa2/fa2.cu): one query row leaves no query block to share K/V tiles
// between rows, so there is nothing to stage in shared memory; parallelism comes from splitting
// the keys instead of the queries, and the price is the small merge.
//
// Decode is a stream over the cache: each key row is read once, so the kernel is built to keep
// many 16-byte loads in flight. A "lane group" of kGroup lanes reads one key row, each lane one
// or two 16-byte vectors of it (kVecsPerLane), and the dot product is a kGroup-lane shuffle sum
// (a warp per row at head_dim 128 in float32). Each group takes kUnroll keys per step and issues
// all their K and V loads before the first use. Then, per group (online softmax, base 2):
//   s_u = q . k_u (scaled, softcapped);  m_new = max(m, s_u);  acc = acc * 2^(m - m_new) + sum_u 2^(s_u - m_new) v_u
// and the block's groups merge their (m, l, acc) through shared memory at the end.
//
// Grid: one thread block per (split, new token, head, batch): blockIdx.x =
// ((b * heads + h) * seqlen_q + i) * num_splits + split; the splits of one head run side by side
// and the heads of one KV head (GQA) are neighbours, so their K/V reads meet in L2.
// Block: kThreads = 128 threads = kThreads / kGroup key groups.
// Shared memory: per key group m, l and acc [kGroup * kVecsPerLane * vector width] floats (<= 4 KB).
// Cache: contiguous [batch, capacity, heads_kv, head_dim] or paged through block_table; a length
// outside [0, capacity] is an empty sequence, a page index outside [0, num_pages) an absent key.
#include "common/attention_math.h"
#include "cuda/common/check.cuh"
#include "cuda/common/simt.cuh"
#include "cuda/common/simt_tile.cuh"
#include "cuda/decode/decode_combine.h"
#include "cuda/launchers.h"

namespace sfa::cuda {
namespace {

using namespace simt;

constexpr int kThreads = 128;
constexpr int kUnroll = 4;  // keys per group per step: 2 * kUnroll * kVecsPerLane loads in flight per lane

// Position j of sequence b, KV head h_kv: its K and V rows, or false when its page is absent.
template <typename T>
__device__ __forceinline__ bool key_rows(const DecodeProblem& p, int b, int h_kv, int64_t j,
                                         const T** k, const T** v) {
  int64_t page = b, row = j;
  if (p.block_table != nullptr) {
    const int64_t page_index = j / p.page_size;
    page = p.block_table[b * p.block_table_stride + page_index];
    if (page < 0 || page >= p.num_pages) return false;
    row = j - page_index * p.page_size;
  }
  *k = static_cast<const T*>(p.k_cache) + page * p.k_stride.batch + row * p.k_stride.row + h_kv * p.k_stride.head;
  *v = static_cast<const T*>(p.v_cache) + page * p.v_stride.batch + row * p.v_stride.row + h_kv * p.v_stride.head;
  return true;
}

template <typename T, int kGroup, int kVecsPerLane>
__global__ void __launch_bounds__(kThreads) decode_split_kernel(const DecodeProblem p, const ScoreTransform score) {
  constexpr int kE = kVecElems<T>;
  constexpr int kKeyGroups = kThreads / kGroup;
  constexpr int kRowFloats = kGroup * kVecsPerLane * kE;  // the widest head_dim this instance holds
  __shared__ float sM[kKeyGroups], sL[kKeyGroups];
  __shared__ float4 sAcc[kKeyGroups * kRowFloats / 4];

  const int split = blockIdx.x % p.num_splits;
  const int i = (blockIdx.x / p.num_splits) % p.seqlen_q;
  const int h = (blockIdx.x / p.num_splits / p.seqlen_q) % p.heads;
  const int b = blockIdx.x / p.num_splits / p.seqlen_q / p.heads;
  const int h_kv = h / (p.heads / p.heads_kv);
  int64_t len = p.cache_seqlens != nullptr ? p.cache_seqlens[b] : p.capacity;
  if (len < 0 || len > p.capacity) len = 0;

  // This split's keys: an equal share of the keys query i sees (j <= len - seqlen_q + i, window).
  const KeyRange range = visible_keys(i, p.seqlen_q, len, p.window_left, 0);
  const int64_t span = range.empty() ? 0 : range.hi - range.lo;
  const int64_t chunk = (span + p.num_splits - 1) / p.num_splits;
  const int64_t k_begin = range.lo + split * chunk;
  const int64_t k_end = min(range.hi, k_begin + chunk);

  const int tid = threadIdx.x, lane = tid % kGroup, group = tid / kGroup;
  const int vecs = p.head_dim / kE;  // 16-byte vectors per row
  float rq[kVecsPerLane][kE];
  const T* gq = static_cast<const T*>(p.q) + b * p.q_stride.batch + i * p.q_stride.row + h * p.q_stride.head;
#pragma unroll
  for (int w = 0; w < kVecsPerLane; ++w) {
    const int vec = lane + kGroup * w;
#pragma unroll
    for (int e = 0; e < kE; ++e) rq[w][e] = 0.0f;
    if (vec < vecs) load_vec(gq + vec * kE, rq[w]);
  }

  OnlineSoftmax st;
  float acc[kVecsPerLane][kE] = {};
  // The trip count is the same for every thread (the shuffles below need whole warps); a
  // group's keys past k_end are masked.
  for (int64_t step = k_begin; step < k_end; step += kKeyGroups * kUnroll) {
    const int64_t key = step + group * kUnroll;
    float rk[kUnroll][kVecsPerLane][kE], rv[kUnroll][kVecsPerLane][kE];
    bool valid[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {  // issue every load of the step first
      const T *k_row = nullptr, *v_row = nullptr;
      valid[u] = key + u < k_end && key_rows(p, b, h_kv, key + u, &k_row, &v_row);
#pragma unroll
      for (int w = 0; w < kVecsPerLane; ++w) {
        const int vec = lane + kGroup * w;
        if (valid[u] && vec < vecs) {
          load_vec(k_row + vec * kE, rk[u][w]);
          load_vec(v_row + vec * kE, rv[u][w]);
        } else {
#pragma unroll
          for (int e = 0; e < kE; ++e) rk[u][w][e] = 0.0f, rv[u][w][e] = 0.0f;
        }
      }
    }
    // s_u = q . k_u (a kGroup-lane sum), scaled into the log2 domain
    float s[kUnroll];
    float step_max = -INFINITY;
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      float dot = 0.0f;
#pragma unroll
      for (int w = 0; w < kVecsPerLane; ++w) {
#pragma unroll
        for (int e = 0; e < kE; ++e) dot = fmaf(rq[w][e], rk[u][w][e], dot);
      }
      dot = group_sum<kGroup>(dot);
      s[u] = valid[u] ? score(dot) : -INFINITY;
      step_max = fmaxf(step_max, s[u]);
    }
    // m_new = max(m, s); acc = acc * 2^(m - m_new) + sum_u 2^(s_u - m_new) v_u
    const float alpha = st.rescale(step_max);
#pragma unroll
    for (int w = 0; w < kVecsPerLane; ++w) {
#pragma unroll
      for (int e = 0; e < kE; ++e) acc[w][e] *= alpha;
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const float prob = st.prob(s[u]);
      st.l += prob;
#pragma unroll
      for (int w = 0; w < kVecsPerLane; ++w) {
#pragma unroll
        for (int e = 0; e < kE; ++e) acc[w][e] = fmaf(prob, rv[u][w][e], acc[w][e]);
      }
    }
  }

  // Merge the key groups: each publishes (m, l, acc), then every thread merges them for its columns.
  if (lane == 0) sM[group] = st.m, sL[group] = st.l;
#pragma unroll
  for (int w = 0; w < kVecsPerLane; ++w) {
    const int vec = lane + kGroup * w;
    if (vec >= vecs) continue;
#pragma unroll
    for (int e = 0; e < kE; e += 4) {
      sAcc[(group * kRowFloats + vec * kE + e) / 4] = make_float4(acc[w][e], acc[w][e + 1], acc[w][e + 2], acc[w][e + 3]);
    }
  }
  __syncthreads();  // every group's m, l and acc are in shared memory
  float m_all = -INFINITY, l_all = 0.0f;
#pragma unroll
  for (int g = 0; g < kKeyGroups; ++g) m_all = fmaxf(m_all, sM[g]);
#pragma unroll
  for (int g = 0; g < kKeyGroups; ++g) l_all += sM[g] == -INFINITY ? 0.0f : sL[g] * exp2f(sM[g] - m_all);
  const float inv_l = l_all > 0.0f ? 1.0f / l_all : 0.0f;
  const float lse = l_all > 0.0f ? (m_all + log2f(l_all)) * kLn2 : -INFINITY;
  const int64_t row = (static_cast<int64_t>(b) * p.seqlen_q + i) * p.heads + h;  // workspace row
  const int64_t rows = static_cast<int64_t>(p.batch) * p.seqlen_q * p.heads;
  T* gout = static_cast<T*>(p.out) + b * p.out_stride.batch + i * p.out_stride.row + h * p.out_stride.head;
  const float* sacc = reinterpret_cast<const float*>(sAcc);
  for (int c = tid; c < p.head_dim; c += kThreads) {
    float o = 0.0f;
#pragma unroll
    for (int g = 0; g < kKeyGroups; ++g) {
      if (sM[g] != -INFINITY) o = fmaf(exp2f(sM[g] - m_all), sacc[g * kRowFloats + c], o);
    }
    o *= inv_l;
    if (p.num_splits == 1) {
      gout[c] = from_float<T>(o);
    } else {
      p.workspace_out[(split * rows + row) * p.head_dim + c] = o;
    }
  }
  if (tid == 0) {
    if (p.num_splits > 1) {
      p.workspace_lse[split * rows + row] = lse;
    } else if (p.lse != nullptr) {
      p.lse[b * p.lse_batch_stride + h * p.lse_head_stride + i] = lse;
    }
  }
}

template <typename T, int kGroup, int kVecsPerLane>
Status launch_split(const DecodeProblem& p, unsigned blocks, cudaStream_t stream) {
  decode_split_kernel<T, kGroup, kVecsPerLane><<<blocks, kThreads, 0, stream>>>(
      p, make_score_transform(p.softmax_scale, p.softcap));
  return check_launch("decode_split_kernel");
}

// Lanes per key row: the 16-byte vectors of a row, rounded up to a power of two (at least 4,
// at most a warp); a float32 row of head_dim > 128 takes two vectors per lane.
template <typename T>
Status launch_split(const DecodeProblem& p, unsigned blocks, cudaStream_t stream) {
  const int vecs = p.head_dim / kVecElems<T>;
  if (vecs <= 4) return launch_split<T, 4, 1>(p, blocks, stream);
  if (vecs <= 8) return launch_split<T, 8, 1>(p, blocks, stream);
  if (vecs <= 16) return launch_split<T, 16, 1>(p, blocks, stream);
  if (vecs <= 32) return launch_split<T, 32, 1>(p, blocks, stream);
  if constexpr (kVecElems<T> == 4) {
    if (vecs <= 64) return launch_split<T, 32, 2>(p, blocks, stream);
  }
  return Status(StatusCode::kInternal, "decode: head_dim " + std::to_string(p.head_dim) + " too large");
}

}  // namespace

Status launch_decode(const DecodeProblem& p, cudaStream_t stream) {
  const int64_t blocks = static_cast<int64_t>(p.num_splits) * p.seqlen_q * p.heads * p.batch;
  if (blocks > INT32_MAX) {
    return Status(StatusCode::kUnsupported, "kernel 'decode': num_splits * seqlen_q * heads * batch = " +
                                                std::to_string(blocks) + " thread blocks exceed 2^31 - 1");
  }
  SFA_RETURN_IF_ERROR(dispatch_dtype(p.dtype, [&](auto type) {
    return launch_split<typename decltype(type)::type>(p, static_cast<unsigned>(blocks), stream);
  }));
  return p.num_splits > 1 ? launch_decode_combine(p, stream) : Status::ok();
}

}  // namespace sfa::cuda
