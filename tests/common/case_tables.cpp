// The DESIGN.md case tables: awkward sequence lengths (1, 3, 17, 97, 128, 177, 1025), unequal
// query/key lengths both ways, head dims 32..256 incl. 80 and 96, GQA ratios 1/4/8, causal,
// windows, softcap, varlen with empty sequences, strided views; decode with kv 1, 255, 256, 4097,
// 32k, page sizes 1/16/256, splits 1/2/256, ragged lengths, windows and softcap.
//
// The small tables drop the long sequences so the float64 reference stays cheap (every case well
// under a second on one core); the full tables keep them.
#include <algorithm>

#include "testing.h"

namespace sfa::testing {

AttentionCase attention_case(DType t, int batch, int seqlen_q, int seqlen_k, int heads, int heads_kv,
                             int head_dim) {
  AttentionCase c;
  c.dtype = t;
  c.batch = batch;
  c.seqlen_q = seqlen_q;
  c.seqlen_k = seqlen_k;
  c.heads = heads;
  c.heads_kv = heads_kv;
  c.head_dim = head_dim;
  return c;
}

DecodeCase decode_case(DType t, int batch, int seqlen_q, int heads, int heads_kv, int head_dim, int kv_len) {
  DecodeCase c;
  c.dtype = t;
  c.batch = batch;
  c.seqlen_q = seqlen_q;
  c.heads = heads;
  c.heads_kv = heads_kv;
  c.head_dim = head_dim;
  c.kv_len = kv_len;
  return c;
}

namespace {

constexpr auto attn = attention_case;

AttentionCase causal(AttentionCase c) {
  c.causal = true;
  return c;
}
AttentionCase window(AttentionCase c, int64_t left, int64_t right) {
  c.window_left = left;
  c.window_right = right;
  return c;
}
AttentionCase softcap(AttentionCase c, float cap, float scale) {
  c.softcap = cap;
  c.softmax_scale = scale;
  return c;
}
AttentionCase varlen(AttentionCase c) {
  c.varlen = true;
  return c;
}
AttentionCase strided(AttentionCase c) {
  c.strided = true;
  return c;
}

constexpr auto dec = decode_case;

DecodeCase paged(DecodeCase c, int page_size) {
  c.page_size = page_size;
  return c;
}
DecodeCase splits(DecodeCase c, int n) {
  c.num_splits = n;
  return c;
}
DecodeCase ragged(DecodeCase c) {
  c.ragged = true;
  return c;
}

}  // namespace

std::vector<AttentionCase> attention_case_table(DType t, bool small) {
  std::vector<AttentionCase> v;
  const int long_len = small ? 256 : 1025;  // the longest sequence of the table

  // Square sequences of every awkward length, without and with the causal mask.
  for (int s : {1, 3, 17, 97, 128, 177}) {
    v.push_back(attn(t, 2, s, s, 4, 2, 64));
    v.push_back(causal(attn(t, 2, s, s, 4, 2, 64)));
  }
  v.push_back(attn(t, 1, long_len, long_len, 2, 1, 64));
  v.push_back(causal(attn(t, 1, long_len, long_len, 2, 2, 64)));

  // seqlen_q != seqlen_k both ways (bottom-right causal; seqlen_q > seqlen_k leaves empty rows).
  const int pairs[][2] = {{1, 128}, {128, 1}, {3, 97}, {97, 3}, {17, 177}, {177, 17}, {128, long_len}, {long_len, 128}};
  for (const auto& p : pairs) {
    v.push_back(attn(t, 2, p[0], p[1], 2, 1, 64));
    v.push_back(causal(attn(t, 2, p[0], p[1], 2, 1, 64)));
  }

  // Head dims 32..256 (incl. 80 and 96), odd lengths.
  for (int d : {32, 64, 80, 96, 128, 160, 192, 256}) {
    v.push_back(attn(t, 1, 97, 177, 2, 1, d));
    v.push_back(causal(attn(t, 1, 97, 97, 2, 2, d)));
  }
  v.push_back(attn(t, 2, 8, 8, 2, 2, 8));  // the smallest head_dim the API accepts

  // GQA ratios 1, 4, 8 (and MQA at ratio 8 with one KV head).
  for (int hkv : {8, 2, 1}) {
    v.push_back(attn(t, 2, 128, 128, 8, hkv, 64));
    v.push_back(causal(attn(t, 2, 17, 177, 8, hkv, 128)));
  }
  v.push_back(causal(attn(t, 3, 33, 33, 3, 1, 96)));  // odd batch and heads

  // Sliding windows: with causal, two-sided, right only, the diagonal only, left only, and
  // windows that leave rows empty when seqlen_q > seqlen_k.
  v.push_back(causal(window(attn(t, 2, 177, 177, 4, 2, 64), 32, 0)));
  v.push_back(window(attn(t, 2, 128, 128, 4, 4, 64), 16, 8));
  v.push_back(window(attn(t, 1, 97, 97, 2, 1, 128), -1, 5));
  v.push_back(window(attn(t, 1, 97, 97, 2, 1, 64), 0, 0));
  v.push_back(window(attn(t, 1, 17, 177, 2, 1, 64), 7, -1));
  v.push_back(causal(window(attn(t, 2, 17, 177, 4, 1, 64), 20, 0)));
  v.push_back(window(attn(t, 1, 177, 17, 2, 2, 64), 3, 0));
  v.push_back(causal(attn(t, 1, 2 * long_len, long_len / 2, 2, 1, 64)));

  // Softcap: a cap that bites (scale 0.5 makes scores larger than the cap), and the usual one.
  v.push_back(softcap(attn(t, 2, 97, 128, 4, 2, 64), 5.0f, 0.5f));
  v.push_back(causal(softcap(attn(t, 1, 128, 128, 4, 1, 128), 30.0f, 0.0f)));
  v.push_back(softcap(attn(t, 1, 17, 17, 2, 2, 64), 0.0f, 0.3f));  // an explicit scale, no cap
  v.push_back(causal(window(softcap(attn(t, 2, 177, 177, 2, 1, 96), 8.0f, 0.25f), 40, 0)));

  // Varlen: zero-length sequences, unequal lengths, GQA, masks, strided.
  v.push_back(varlen(attn(t, 5, 128, 128, 4, 2, 64)));
  v.push_back(causal(varlen(attn(t, 5, 128, 128, 4, 2, 64))));
  v.push_back(varlen(attn(t, 4, 97, 177, 8, 2, 128)));
  v.push_back(causal(varlen(attn(t, 4, 177, 97, 8, 1, 80))));
  v.push_back(causal(window(varlen(attn(t, 3, 128, 128, 2, 2, 64)), 16, 0)));
  v.push_back(softcap(varlen(attn(t, 3, 17, 17, 2, 1, 32)), 5.0f, 0.5f));
  v.push_back(varlen(attn(t, 1, 97, 97, 2, 2, 64)));
  v.push_back(strided(causal(varlen(attn(t, 4, 97, 97, 4, 2, 64)))));
  v.push_back(varlen(attn(t, 3, long_len, long_len, 2, 1, 64)));

  // Strided (non-contiguous) views, and a call without lse.
  v.push_back(strided(attn(t, 2, 97, 128, 4, 2, 64)));
  v.push_back(strided(causal(attn(t, 2, 128, 128, 2, 1, 128))));
  v.push_back(strided(attn(t, 1, 17, 17, 2, 2, 256)));
  AttentionCase no_lse = causal(attn(t, 2, 97, 97, 4, 2, 64));
  no_lse.with_lse = false;
  v.push_back(no_lse);

  // Many short rows (batch * heads large, one query each).
  v.push_back(attn(t, 16, 1, 177, 8, 8, 64));
  if (!small) {
    v.push_back(causal(attn(t, 1, long_len, long_len, 2, 1, 128)));
    v.push_back(attn(t, 1, 512, 512, 2, 1, 256));
  }
  return v;
}

std::vector<DecodeCase> decode_case_table(DType t, bool small) {
  std::vector<DecodeCase> v;
  // Cache lengths 1, 255, 256, 4097 (and 32k in the full table), heuristic splits.
  for (int kv : {1, 255, 256, 4097}) v.push_back(dec(t, 2, 1, 8, 2, 128, kv));
  if (!small) {
    v.push_back(dec(t, 1, 1, 8, 8, 128, 32768));
    v.push_back(paged(dec(t, 2, 1, 32, 8, 128, 32768), 256));
  }
  // Explicit split counts: 1 (no merge), 2, and the maximum (more splits than keys at kv 255).
  for (int n : {1, 2, kMaxSplits}) {
    v.push_back(splits(dec(t, 2, 1, 8, 8, 64, 255), n));
    v.push_back(splits(ragged(dec(t, 3, 1, 8, 2, 128, 4097)), n));
  }
  // Paged caches with page sizes 1, 16, 256 (shuffled pages), ragged lengths.
  for (int ps : {1, 16, 256}) {
    v.push_back(paged(ragged(dec(t, 3, 1, 8, 2, 128, 1000)), ps));
    v.push_back(splits(paged(dec(t, 2, 1, 8, 8, 64, 255), ps), 2));
  }
  v.push_back(paged(dec(t, 1, 1, 8, 1, 128, 4097), 16));
  // GQA ratios 1, 4, 8 and head dims 32..256.
  v.push_back(ragged(dec(t, 4, 1, 32, 8, 128, 513)));
  v.push_back(ragged(dec(t, 4, 1, 64, 8, 128, 300)));
  v.push_back(ragged(dec(t, 2, 1, 16, 16, 128, 300)));
  for (int d : {32, 64, 80, 96, 256}) v.push_back(ragged(dec(t, 3, 1, 8, 2, d, 300)));
  // Several new tokens per sequence (speculative decoding); ragged lengths shorter than
  // seqlen_q leave rows with no keys.
  for (int sq : {2, 4, 8, 9}) v.push_back(ragged(dec(t, 4, sq, 8, 2, 128, 97)));
  v.push_back(paged(splits(ragged(dec(t, 3, 4, 16, 2, 64, 600)), 3), 16));
  // Sliding window and softcap.
  DecodeCase w = ragged(dec(t, 3, 1, 8, 2, 128, 1000));
  w.window_left = 100;
  v.push_back(w);
  w = splits(dec(t, 2, 4, 8, 8, 64, 300), 4);
  w.window_left = 0;
  v.push_back(w);
  DecodeCase cap = ragged(dec(t, 3, 2, 8, 2, 128, 500));
  cap.softcap = 5.0f;
  cap.softmax_scale = 0.5f;
  v.push_back(cap);
  cap = paged(dec(t, 2, 1, 16, 4, 64, 700), 16);
  cap.softcap = 30.0f;
  cap.window_left = 64;
  v.push_back(cap);
  // Many sequences, and a call without lse.
  v.push_back(ragged(dec(t, 16, 1, 8, 8, 64, 128)));
  DecodeCase no_lse = dec(t, 2, 1, 8, 2, 128, 256);
  no_lse.with_lse = false;
  v.push_back(no_lse);
  return v;
}

}  // namespace sfa::testing
