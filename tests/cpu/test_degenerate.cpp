// Empty and degenerate problems: nothing to compute, or rows that see no key (out = 0 exactly,
// lse = -inf), for every CPU kernel.
#include <gtest/gtest.h>

#include <iostream>

#include "testing.h"

namespace sfa::testing {
namespace {

void expect_exact(const CaseResult& r) {
  std::cout << r.summary() << "\n";
  EXPECT_TRUE(r.passed()) << r.summary();
  EXPECT_EQ(r.out_error, 0.0) << r.summary();  // the reference is 0 (absolute norm) or empty
  EXPECT_EQ(r.lse_error, 0.0) << r.summary();  // -inf reproduced exactly
}

AttentionCase attn(int batch, int sq, int sk, bool varlen, bool causal) {
  AttentionCase c;
  c.dtype = DType::kFloat16;
  c.batch = batch;
  c.seqlen_q = sq;
  c.seqlen_k = sk;
  c.heads = 4;
  c.heads_kv = 2;
  c.head_dim = 32;
  c.varlen = varlen;
  c.causal = causal;
  return c;
}

TEST(Degenerate, AttentionEmptyShapes) {
  for (Kernel k : {Kernel::kCpuReference, Kernel::kCpuFlash, Kernel::kAuto}) {
    for (bool varlen : {false, true}) {
      for (bool causal : {false, true}) {
        expect_exact(run_attention_case(attn(0, 5, 7, varlen, causal), k, Device::cpu(), next_seed()));
        expect_exact(run_attention_case(attn(3, 0, 7, varlen, causal), k, Device::cpu(), next_seed()));
        // seqlen_k = 0: every row sees nothing.
        expect_exact(run_attention_case(attn(3, 5, 0, varlen, causal), k, Device::cpu(), next_seed()));
        expect_exact(run_attention_case(attn(3, 0, 0, varlen, causal), k, Device::cpu(), next_seed()));
      }
    }
  }
}

TEST(Degenerate, WindowPastEveryKey) {
  // seqlen_q > seqlen_k with causal and a window: the first rows are empty, the rest are not.
  AttentionCase c = attn(2, 40, 3, false, true);
  c.window_left = 1;
  for (Kernel k : {Kernel::kCpuReference, Kernel::kCpuFlash}) {
    const CaseResult r = run_attention_case(c, k, Device::cpu(), next_seed());
    std::cout << r.summary() << "\n";
    EXPECT_TRUE(r.passed()) << r.summary();
  }
}

DecodeCase dec(int batch, int sq, int kv, int page_size, int splits) {
  DecodeCase c;
  c.dtype = DType::kBFloat16;
  c.batch = batch;
  c.seqlen_q = sq;
  c.heads = 4;
  c.heads_kv = 1;
  c.head_dim = 64;
  c.kv_len = kv;
  c.page_size = page_size;
  c.num_splits = splits;
  return c;
}

TEST(Degenerate, DecodeEmpty) {
  for (Kernel k : {Kernel::kCpuReference, Kernel::kCpuDecode}) {
    for (int page_size : {0, 4}) {
      for (int splits : {0, 1, 3}) {
        expect_exact(run_decode_case(dec(0, 1, 10, page_size, splits), k, Device::cpu(), next_seed()));
        expect_exact(run_decode_case(dec(2, 0, 10, page_size, splits), k, Device::cpu(), next_seed()));
        // cache_seqlens all 0 (an empty cache): out = 0, lse = -inf.
        expect_exact(run_decode_case(dec(2, 3, 0, page_size, splits), k, Device::cpu(), next_seed()));
      }
    }
  }
}

TEST(Degenerate, DecodeMoreQueriesThanKeys) {
  // seqlen_q > cache length: the first queries see nothing; ragged lengths include 0.
  DecodeCase c = dec(4, 6, 3, 0, 2);
  c.ragged = true;
  for (Kernel k : {Kernel::kCpuReference, Kernel::kCpuDecode}) {
    const CaseResult r = run_decode_case(c, k, Device::cpu(), next_seed());
    std::cout << r.summary() << "\n";
    EXPECT_TRUE(r.passed()) << r.summary();
  }
}

}  // namespace
}  // namespace sfa::testing
