// FlashAttention-2 on the CPU (Dao, 2023, Algorithm 1, forward pass).
//
// Each work item is one block of Br = kBlockM query rows of one (sequence, head). It loads Q_i
// once, streams the key tiles (K_j, V_j) of Bc = kBlockN keys that the block can see, and keeps
// the running max m, sum l and unnormalised output O for its rows (tile.h). Only when the last
// tile is done is O divided by l and written, with lse = m + log l: the deferred normalisation
// of FA-2. Memory is O(Br * Bc + Br * head_dim) per thread, independent of seqlen^2.
//
// Work items (batch x heads x query blocks) go to num_threads() workers; a causal block near the
// diagonal has fewer tiles, so items are handed out dynamically.
#include <algorithm>
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
  explicit Worker(const AttentionProblem& p) : tile(p.head_dim, p.softmax_scale, p.softcap), out_row(p.head_dim) {}
};

}  // namespace

Status flash_attention(const AttentionProblem& p) {
  const int D = p.head_dim;
  const int64_t blocks = (p.seqlen_q + kBlockM - 1) / kBlockM;
  const int64_t items = static_cast<int64_t>(p.batch) * p.heads * blocks;
  std::vector<Worker> workers(worker_count(items), Worker(p));
  parallel_for(items, [&](int worker, int64_t item) {
    TileAttention& t = workers[worker].tile;
    float* out_row = workers[worker].out_row.data();
    const int64_t b = item / (p.heads * blocks);
    const int64_t h = item / blocks % p.heads;
    const int64_t h_kv = h / p.heads_per_kv();
    const Sequence seq = attention_sequence(p, b);
    const int64_t i0 = item % blocks * kBlockM;
    const int rows = static_cast<int>(std::min<int64_t>(kBlockM, seq.lq - i0));
    if (rows <= 0) return;

    // Q_i: the block's query rows, and the keys each one sees.
    t.begin(rows);
    for (int r = 0; r < rows; ++r) {
      load_row(p.q, p.dtype, row_offset(p.q_stride, b, seq.q_row0 + i0 + r, h), D, t.query(r));
      t.set_keys(r, visible_keys(i0 + r, seq.lq, seq.lk, p.window_left, p.window_right));
    }
    t.prepare();

    // for each key tile j the block sees: S = Q_i K_j^T, online softmax, O += P V_j.
    const KeyRange span = t.span();
    for (int64_t j0 = span.lo; j0 < span.hi; j0 += kBlockN) {
      const int n = static_cast<int>(std::min<int64_t>(kBlockN, span.hi - j0));
      for (int j = 0; j < n; ++j) {
        const int64_t row = seq.k_row0 + j0 + j;
        load_row(p.k, p.dtype, row_offset(p.k_stride, b, row, h_kv), D, t.key(j));
        load_row(p.v, p.dtype, row_offset(p.v_stride, b, row, h_kv), D, t.value(j));
      }
      t.attend(j0, n);
    }

    // out = O / l, lse = m + log l (rows with no visible key: out = 0, lse = -inf).
    for (int r = 0; r < rows; ++r) {
      const int64_t row = seq.q_row0 + i0 + r;
      float lse = 0.0f;
      t.finish(r, out_row, &lse);
      store_row(p.out, p.dtype, row_offset(p.out_stride, b, row, h), D, out_row);
      if (p.lse != nullptr) p.lse[lse_offset(p.lse_batch_stride, p.lse_head_stride, b, h, row)] = lse;
    }
  });
  return Status::ok();
}

}  // namespace sfa::cpu
