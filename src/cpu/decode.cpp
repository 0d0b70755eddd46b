// Split-KV decode (Flash-Decoding) on the CPU.
//
// The keys of each sequence are cut into num_splits equal chunks. Pass 1 computes, for every
// chunk s and query row independently, the partial result over that chunk's keys only:
//   o_s = softmax(S_s) V_s,   lse_s = log sum_{j in s} exp(S_j)     (tile.h, FA-2 inner loop)
// written to the workspace (partial out [num_splits, batch, seqlen_q, heads, head_dim], partial
// lse [num_splits, batch, seqlen_q, heads]). Pass 2 merges the chunks with MergeState, the same
// combine the CUDA kernels use:
//   lse = log sum_s exp(lse_s),   out = sum_s exp(lse_s - lse) o_s
// An empty chunk has lse_s = -inf and weight 0. With num_splits == 1 pass 1 writes out and lse
// directly.
//
// Query i of sequence b sits at cache position len - seqlen_q + i and sees the keys
// visible_keys(i, seqlen_q, len, window_left, 0). A pass-1 item is (sequence, kv head, chunk,
// block of rows): the rows of all query heads sharing the kv head (GQA) and all new tokens
// attend to the same key tiles, so each tile is loaded once for the whole group.
#include <algorithm>
#include <cstring>
#include <vector>

#include "common/attention_math.h"
#include "cpu/cpu_backend.h"
#include "cpu/geometry.h"
#include "cpu/parallel.h"
#include "cpu/tile.h"

namespace sfa::cpu {
namespace {

struct Worker {
  TileAttention tile;
  std::vector<float> out_row;
  explicit Worker(const DecodeProblem& p) : tile(p.head_dim, p.softmax_scale, p.softcap), out_row(p.head_dim) {}
};

// Row index of (split, b, i, h) in the partial results.
int64_t partial_row(const DecodeProblem& p, int64_t split, int64_t b, int64_t i, int64_t h) {
  return ((split * p.batch + b) * p.seqlen_q + i) * p.heads + h;
}

// Pass 2: out = sum_s weight_s o_s, lse = merged lse, for every (b, i, h).
void merge_splits(const DecodeProblem& p) {
  const int D = p.head_dim;
  const int64_t items = static_cast<int64_t>(p.batch) * p.seqlen_q;
  std::vector<std::vector<float>> acc(worker_count(items), std::vector<float>(D));
  parallel_for(items, [&](int worker, int64_t item) {
    float* out_row = acc[worker].data();
    const int64_t b = item / p.seqlen_q, i = item % p.seqlen_q;
    for (int64_t h = 0; h < p.heads; ++h) {
      MergeState st;
      for (int64_t s = 0; s < p.num_splits; ++s) st.add(p.workspace_lse[partial_row(p, s, b, i, h)]);
      std::fill(out_row, out_row + D, 0.0f);
      for (int64_t s = 0; s < p.num_splits; ++s) {
        const int64_t row = partial_row(p, s, b, i, h);
        const float w = st.weight(p.workspace_lse[row]);
        if (w == 0.0f) continue;  // an empty chunk
        const float* o = p.workspace_out + row * D;
        for (int d = 0; d < D; ++d) out_row[d] += w * o[d];
      }
      store_row(p.out, p.dtype, row_offset(p.out_stride, b, i, h), D, out_row);
      if (p.lse != nullptr) p.lse[lse_offset(p.lse_batch_stride, p.lse_head_stride, b, h, i)] = st.lse();
    }
  });
}

}  // namespace

Status split_kv_decode(const DecodeProblem& p) {
  const int D = p.head_dim;
  const int group = p.heads_per_kv();
  const int64_t splits = p.num_splits > 0 ? p.num_splits : 1;
  if (splits > 1 && (p.workspace_out == nullptr || p.workspace_lse == nullptr)) {
    return Status(StatusCode::kInternal, "split-KV decode without a workspace");
  }
  const int64_t group_rows = static_cast<int64_t>(group) * p.seqlen_q;  // rows sharing a kv head
  const int64_t blocks = (group_rows + kBlockM - 1) / kBlockM;
  const int64_t items = static_cast<int64_t>(p.batch) * p.heads_kv * splits * blocks;
  std::vector<Worker> workers(worker_count(items), Worker(p));

  // Pass 1: partial attention of each chunk of keys.
  parallel_for(items, [&](int worker, int64_t item) {
    TileAttention& t = workers[worker].tile;
    float* out_row = workers[worker].out_row.data();
    const int64_t block = item % blocks;
    const int64_t split = item / blocks % splits;
    const int64_t h_kv = item / (blocks * splits) % p.heads_kv;
    const int64_t b = item / (blocks * splits * p.heads_kv);
    const int64_t len = decode_length(p, b);
    const int64_t chunk = (len + splits - 1) / splits;
    const int64_t chunk_lo = std::min(len, split * chunk), chunk_hi = std::min(len, chunk_lo + chunk);

    // Row r of the block is query token i of head h = h_kv * group + g.
    const int64_t r0 = block * kBlockM;
    const int rows = static_cast<int>(std::min<int64_t>(kBlockM, group_rows - r0));
    t.begin(rows);
    for (int r = 0; r < rows; ++r) {
      const int64_t g = (r0 + r) / p.seqlen_q, i = (r0 + r) % p.seqlen_q;
      load_row(p.q, p.dtype, row_offset(p.q_stride, b, i, h_kv * group + g), D, t.query(r));
      KeyRange keys = visible_keys(i, p.seqlen_q, len, p.window_left, 0);
      keys.lo = std::max(keys.lo, chunk_lo);
      keys.hi = std::min(keys.hi, chunk_hi);
      t.set_keys(r, keys);
    }
    t.prepare();

    const KeyRange span = t.span();
    for (int64_t j0 = span.lo; j0 < span.hi; j0 += kBlockN) {
      const int n = static_cast<int>(std::min<int64_t>(kBlockN, span.hi - j0));
      for (int j = 0; j < n; ++j) {
        load_row(p.k_cache, p.dtype, cache_offset(p, p.k_stride, b, j0 + j, h_kv), D, t.key(j));
        load_row(p.v_cache, p.dtype, cache_offset(p, p.v_stride, b, j0 + j, h_kv), D, t.value(j));
      }
      t.attend(j0, n);
    }

    for (int r = 0; r < rows; ++r) {
      const int64_t g = (r0 + r) / p.seqlen_q, i = (r0 + r) % p.seqlen_q;
      const int64_t h = h_kv * group + g;
      float lse = 0.0f;
      t.finish(r, out_row, &lse);
      if (splits == 1) {
        store_row(p.out, p.dtype, row_offset(p.out_stride, b, i, h), D, out_row);
        if (p.lse != nullptr) p.lse[lse_offset(p.lse_batch_stride, p.lse_head_stride, b, h, i)] = lse;
      } else {
        const int64_t row = partial_row(p, split, b, i, h);
        std::memcpy(p.workspace_out + row * D, out_row, sizeof(float) * D);
        p.workspace_lse[row] = lse;
      }
    }
  });

  // Pass 2: merge the chunks.
  if (splits > 1) merge_splits(p);
  return Status::ok();
}

}  // namespace sfa::cpu
