// The oracle: attention computed the plain way, in float64.
//
// For each query row i (of head h, sequence b) and the keys it sees, [lo, hi) = visible_keys():
//   S_j   = softcap(scale * q_i . k_j)            j in [lo, hi)
//   P_j   = exp(S_j - max S) / sum_j exp(S_j - max S)
//   out_i = sum_j P_j v_j,     lse_i = max S + log(sum_j exp(S_j - max S))
// A row that sees no key gets out = 0 and lse = -inf. Everything after loading is float64, so
// the only rounding that matters is the final store in the output dtype.
//
// Work is split over (sequence, kv head, block of query rows): a block converts its sequence's
// keys and values to float once and serves every query head that reads that kv head (GQA).
#include <cmath>
#include <limits>
#include <vector>

#include "common/attention_math.h"
#include "cpu/cpu_backend.h"
#include "cpu/geometry.h"
#include "cpu/parallel.h"

namespace sfa::cpu {
namespace {

constexpr int64_t kRowsPerItem = 64;  // query rows per work item
constexpr int kLanes = 8;             // partial sums per dot product

// One worker's memory: a sequence's keys/values as float, one row of scores, one query row.
struct Scratch {
  std::vector<float> k, v, out;
  std::vector<double> s, q, acc;
  Scratch(int64_t keys, int head_dim)
      : k(keys * head_dim), v(keys * head_dim), out(head_dim), s(keys), q(head_dim), acc(head_dim) {}
};

// out = softmax(S) V for one query row against keys [r.lo, r.hi) (rows of k and v, head_dim wide).
// Returns the row's lse (natural log); acc receives the output row.
double attend_row(const double* q, const float* k, const float* v, KeyRange r, int head_dim, double scale,
                  double softcap, double* s, double* acc) {
  for (int d = 0; d < head_dim; ++d) acc[d] = 0.0;
  if (r.empty()) return -std::numeric_limits<double>::infinity();
  // S_j = softcap(scale * q . k_j), and its maximum.
  double max_s = -std::numeric_limits<double>::infinity();
  for (int64_t j = r.lo; j < r.hi; ++j) {
    const float* kj = k + j * head_dim;
    // q . k_j with kLanes partial sums (vectorisable; head_dim is a multiple of 8).
    double acc_lanes[kLanes] = {};
    for (int d = 0; d < head_dim; d += kLanes) {
      for (int l = 0; l < kLanes; ++l) acc_lanes[l] += q[d + l] * kj[d + l];
    }
    double dot = 0.0;
    for (int l = 0; l < kLanes; ++l) dot += acc_lanes[l];
    s[j] = apply_softcap(scale * dot, softcap);
    max_s = std::max(max_s, s[j]);
  }
  // P_j = exp(S_j - max) / sum; out = sum_j P_j v_j.
  double sum = 0.0;
  for (int64_t j = r.lo; j < r.hi; ++j) {
    const double e = std::exp(s[j] - max_s);
    sum += e;
    const float* vj = v + j * head_dim;
    for (int d = 0; d < head_dim; ++d) acc[d] += e * vj[d];
  }
  for (int d = 0; d < head_dim; ++d) acc[d] /= sum;
  return max_s + std::log(sum);
}

// Loads query row q[offset..] as double, attends, stores the output row and lse.
// The keys and values are in w->k, w->v.
void reference_row(DType dtype, const void* q, int64_t q_off, KeyRange r, int head_dim, double scale,
                   double softcap, void* out, int64_t out_off, float* lse, int64_t lse_off, Scratch* w) {
  load_row(q, dtype, q_off, head_dim, w->out.data());
  for (int d = 0; d < head_dim; ++d) w->q[d] = w->out[d];
  const double row_lse = attend_row(w->q.data(), w->k.data(), w->v.data(), r, head_dim, scale, softcap,
                                    w->s.data(), w->acc.data());
  for (int d = 0; d < head_dim; ++d) w->out[d] = static_cast<float>(w->acc[d]);
  store_row(out, dtype, out_off, head_dim, w->out.data());
  if (lse != nullptr) lse[lse_off] = static_cast<float>(row_lse);
}

}  // namespace

Status reference_attention(const AttentionProblem& p) {
  const int D = p.head_dim;
  const int group = p.heads_per_kv();
  const int64_t blocks = (p.seqlen_q + kRowsPerItem - 1) / kRowsPerItem;
  const int64_t items = static_cast<int64_t>(p.batch) * p.heads_kv * blocks;
  std::vector<Scratch> scratch(worker_count(items), Scratch(p.seqlen_k, D));
  parallel_for(items, [&](int worker, int64_t item) {
    Scratch& w = scratch[worker];
    const int64_t b = item / (p.heads_kv * blocks);
    const int64_t h_kv = item / blocks % p.heads_kv;
    const Sequence seq = attention_sequence(p, b);
    const int64_t i0 = item % blocks * kRowsPerItem;
    const int64_t i1 = std::min(i0 + kRowsPerItem, seq.lq);
    if (i0 >= i1) return;
    for (int64_t j = 0; j < seq.lk; ++j) {
      load_row(p.k, p.dtype, row_offset(p.k_stride, b, seq.k_row0 + j, h_kv), D, &w.k[j * D]);
      load_row(p.v, p.dtype, row_offset(p.v_stride, b, seq.k_row0 + j, h_kv), D, &w.v[j * D]);
    }
    for (int64_t h = h_kv * group; h < (h_kv + 1) * group; ++h) {
      for (int64_t i = i0; i < i1; ++i) {
        const KeyRange r = visible_keys(i, seq.lq, seq.lk, p.window_left, p.window_right);
        const int64_t row = seq.q_row0 + i;
        reference_row(p.dtype, p.q, row_offset(p.q_stride, b, row, h), r, D, p.softmax_scale, p.softcap,
                      p.out, row_offset(p.out_stride, b, row, h), p.lse,
                      lse_offset(p.lse_batch_stride, p.lse_head_stride, b, h, row), &w);
      }
    }
  });
  return Status::ok();
}

// Decode is attention of the seqlen_q newest tokens against the cache: query i of sequence b sits
// at position len - seqlen_q + i, i.e. visible_keys(i, seqlen_q, len, window_left, 0).
Status reference_decode(const DecodeProblem& p) {
  const int D = p.head_dim;
  const int group = p.heads_per_kv();
  const int64_t blocks = (p.seqlen_q + kRowsPerItem - 1) / kRowsPerItem;
  const int64_t items = static_cast<int64_t>(p.batch) * p.heads_kv * blocks;
  std::vector<Scratch> scratch(worker_count(items), Scratch(p.capacity, D));
  parallel_for(items, [&](int worker, int64_t item) {
    Scratch& w = scratch[worker];
    const int64_t b = item / (p.heads_kv * blocks);
    const int64_t h_kv = item / blocks % p.heads_kv;
    const int64_t i0 = item % blocks * kRowsPerItem;
    const int64_t i1 = std::min<int64_t>(i0 + kRowsPerItem, p.seqlen_q);
    const int64_t len = decode_length(p, b);
    for (int64_t j = 0; j < len; ++j) {
      load_row(p.k_cache, p.dtype, cache_offset(p, p.k_stride, b, j, h_kv), D, &w.k[j * D]);
      load_row(p.v_cache, p.dtype, cache_offset(p, p.v_stride, b, j, h_kv), D, &w.v[j * D]);
    }
    for (int64_t h = h_kv * group; h < (h_kv + 1) * group; ++h) {
      for (int64_t i = i0; i < i1; ++i) {
        const KeyRange r = visible_keys(i, p.seqlen_q, len, p.window_left, 0);
        reference_row(p.dtype, p.q, row_offset(p.q_stride, b, i, h), r, D, p.softmax_scale, p.softcap,
                      p.out, row_offset(p.out_stride, b, i, h), p.lse,
                      lse_offset(p.lse_batch_stride, p.lse_head_stride, b, h, i), &w);
      }
    }
  });
  return Status::ok();
}

}  // namespace sfa::cpu
