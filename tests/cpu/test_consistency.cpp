// Cross-checks that do not go through the oracle's own comparison: decode's reference equals
// attention's reference on the same keys (bitwise), the CPU kernels do not depend on the thread
// count, and the harness itself catches unwritten outputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "bad_args.h"
#include "testing.h"

namespace sfa::testing {
namespace {

// Decode is attention of the newest seqlen_q tokens against the cache: for each sequence,
// gather its keys from the (paged) cache into a dense [1, len, heads_kv, head_dim] tensor and
// run the attention reference with causal (bottom-right) and the same window. Both references
// accumulate in the same order, so the outputs agree bit for bit.
void expect_decode_equals_attention(const DecodeCase& c) {
  SCOPED_TRACE(c.describe());
  std::unique_ptr<DecodeRun> run;
  ASSERT_TRUE(DecodeRun::create(c, Device::cpu(), next_seed(), &run).is_ok());
  ASSERT_TRUE(run->run(Kernel::kCpuReference).is_ok());
  const DecodeArgs d = run->args(Kernel::kCpuReference);
  const size_t elem = dtype_size(c.dtype);
  const int64_t row_elems = int64_t{c.heads_kv} * c.head_dim;
  const auto* table = static_cast<const int32_t*>(d.block_table.data);
  for (int b = 0; b < c.batch; ++b) {
    const int len = run->cache_seqlens()[b];
    std::vector<unsigned char> k(std::max(1, len) * row_elems * elem), v(k.size());
    for (int j = 0; j < len; ++j) {
      int64_t src_row = int64_t{b} * c.kv_len + j;  // contiguous: [batch, capacity, ...]
      if (c.page_size > 0) {
        const int64_t pages = d.block_table.shape[1];
        src_row = int64_t{table[b * pages + j / c.page_size]} * c.page_size + j % c.page_size;
      }
      std::memcpy(&k[j * row_elems * elem], static_cast<const char*>(d.k_cache.data) + src_row * row_elems * elem,
                  row_elems * elem);
      std::memcpy(&v[j * row_elems * elem], static_cast<const char*>(d.v_cache.data) + src_row * row_elems * elem,
                  row_elems * elem);
    }
    const int64_t q_elems = int64_t{c.seqlen_q} * c.heads * c.head_dim;
    std::vector<unsigned char> out(q_elems * elem);
    std::vector<float> lse(int64_t{c.heads} * c.seqlen_q);
    const int64_t q_shape[] = {1, c.seqlen_q, c.heads, c.head_dim};
    const int64_t kv_shape[] = {1, len, c.heads_kv, c.head_dim};
    const int64_t lse_shape[] = {1, c.heads, c.seqlen_q};
    AttentionArgs a;
    a.q = make_tensor(static_cast<char*>(d.q.data) + b * q_elems * elem, c.dtype, Device::cpu(), 4, q_shape);
    a.k = make_tensor(k.data(), c.dtype, Device::cpu(), 4, kv_shape);
    a.v = make_tensor(v.data(), c.dtype, Device::cpu(), 4, kv_shape);
    a.out = make_tensor(out.data(), c.dtype, Device::cpu(), 4, q_shape);
    a.lse = make_tensor(lse.data(), DType::kFloat32, Device::cpu(), 3, lse_shape);
    a.causal = true;
    a.window_left = c.window_left;
    a.softcap = c.softcap;
    a.softmax_scale = c.softmax_scale;
    a.kernel = Kernel::kCpuReference;
    ASSERT_TRUE(attention(a).is_ok());
    EXPECT_EQ(std::memcmp(out.data(), static_cast<const char*>(d.out.data) + b * q_elems * elem, out.size()), 0)
        << "sequence " << b << " (length " << len << ")";
    EXPECT_EQ(std::memcmp(lse.data(), static_cast<const float*>(d.lse.data) + b * c.heads * c.seqlen_q,
                          lse.size() * sizeof(float)),
              0)
        << "sequence " << b;
  }
}

TEST(Consistency, DecodeReferenceEqualsAttentionReference) {
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    DecodeCase c;
    c.dtype = t;
    c.batch = 4;
    c.seqlen_q = 3;
    c.heads = 8;
    c.heads_kv = 2;
    c.head_dim = 64;
    c.kv_len = 77;
    c.ragged = true;
    expect_decode_equals_attention(c);
    c.page_size = 16;
    c.window_left = 9;
    expect_decode_equals_attention(c);
    c.page_size = 1;
    c.softcap = 4.0f;
    c.softmax_scale = 0.4f;
    c.seqlen_q = 1;
    expect_decode_equals_attention(c);
  }
}

// Runs `body` with SFA_NUM_THREADS set to `threads`, restoring the environment afterwards.
template <typename Body>
void with_threads(const char* threads, Body body) {
  const char* old = std::getenv("SFA_NUM_THREADS");
  const std::string saved = old ? old : "";
  setenv("SFA_NUM_THREADS", threads, 1);
  body();
  if (old) {
    setenv("SFA_NUM_THREADS", saved.c_str(), 1);
  } else {
    unsetenv("SFA_NUM_THREADS");
  }
}

std::vector<unsigned char> bytes_of(const TensorView& t) {
  const auto* p = static_cast<const unsigned char*>(t.data);
  return std::vector<unsigned char>(p, p + span_bytes(t));
}

// Each output row is computed by exactly one work item, whatever the number of workers.
TEST(Consistency, ResultsDoNotDependOnThreadCount) {
  AttentionCase c;
  c.dtype = DType::kBFloat16;
  c.batch = 3;
  c.seqlen_q = 150;
  c.seqlen_k = 150;
  c.heads = 4;
  c.heads_kv = 2;
  c.head_dim = 64;
  c.causal = true;
  c.varlen = true;
  std::unique_ptr<AttentionRun> run;
  ASSERT_TRUE(AttentionRun::create(c, Device::cpu(), next_seed(), &run).is_ok());
  DecodeCase dc;
  dc.batch = 3;
  dc.kv_len = 900;
  dc.ragged = true;
  dc.page_size = 16;
  dc.num_splits = 3;
  std::unique_ptr<DecodeRun> drun;
  ASSERT_TRUE(DecodeRun::create(dc, Device::cpu(), next_seed(), &drun).is_ok());
  for (Kernel k : {Kernel::kCpuReference, Kernel::kCpuFlash}) {
    std::vector<unsigned char> one, many;
    with_threads("1", [&] { ASSERT_TRUE(run->run(k).is_ok()); });
    one = bytes_of(run->args(k).out);
    with_threads("7", [&] { ASSERT_TRUE(run->run(k).is_ok()); });
    many = bytes_of(run->args(k).out);
    EXPECT_EQ(one, many) << kernel_name(k);
  }
  std::vector<unsigned char> one, many;
  with_threads("1", [&] { ASSERT_TRUE(drun->run(Kernel::kCpuDecode).is_ok()); });
  one = bytes_of(drun->args(Kernel::kCpuDecode).out);
  with_threads("5", [&] { ASSERT_TRUE(drun->run(Kernel::kCpuDecode).is_ok()); });
  many = bytes_of(drun->args(Kernel::kCpuDecode).out);
  EXPECT_EQ(one, many);
}

// ---- the harness catches what it claims to ----------------------------------------------------

TEST(Harness, CountsUnwrittenOutputs) {
  AttentionCase c;
  c.batch = 2;
  c.seqlen_q = 5;
  c.seqlen_k = 5;
  c.heads = 2;
  c.heads_kv = 2;
  c.head_dim = 16;
  std::unique_ptr<AttentionRun> run;
  ASSERT_TRUE(AttentionRun::create(c, Device::cpu(), next_seed(), &run).is_ok());
  // A CUDA kernel refuses CPU tensors: run() poisons the outputs and nothing writes them.
  EXPECT_FALSE(run->run(Kernel::kFa2).is_ok());
  const CaseResult r = run->verify();
  EXPECT_FALSE(r.passed());
  EXPECT_EQ(r.unwritten, 2 * 5 * 2 * 16 + 2 * 2 * 5);  // every out and lse element
  EXPECT_NE(r.summary().find("FAIL"), std::string::npos);
  EXPECT_NE(r.summary().find("seed="), std::string::npos);
}

TEST(Harness, OtherReferenceKernel) {
  AttentionCase c;
  c.dtype = DType::kFloat32;
  c.batch = 2;
  c.seqlen_q = 70;
  c.seqlen_k = 90;
  c.heads = 4;
  c.heads_kv = 1;
  c.head_dim = 32;
  c.strided = true;
  std::unique_ptr<AttentionRun> run;
  ASSERT_TRUE(AttentionRun::create(c, Device::cpu(), next_seed(), &run).is_ok());
  ASSERT_TRUE(run->run(Kernel::kCpuReference).is_ok());
  const CaseResult r = run->verify(Kernel::kCpuFlash);
  EXPECT_TRUE(r.passed()) << r.summary();
  EXPECT_NE(r.summary().find("reference=cpu-flash"), std::string::npos);
  // A CUDA reference cannot serve a CPU run.
  EXPECT_EQ(run->verify(Kernel::kStandard).status.code(), StatusCode::kUnsupported);
  EXPECT_DOUBLE_EQ(run->flops(), 4.0 * 2 * 4 * 70 * 90 * 32);
}

TEST(Harness, FlopsAndBytes) {
  AttentionCase c;
  c.batch = 2;
  c.seqlen_q = 64;
  c.seqlen_k = 64;
  c.heads = 2;
  c.heads_kv = 1;
  c.head_dim = 32;
  c.causal = true;
  std::unique_ptr<AttentionRun> run;
  ASSERT_TRUE(AttentionRun::create(c, Device::cpu(), 5, &run).is_ok());
  EXPECT_DOUBLE_EQ(run->flops(), 4.0 * 2 * 2 * 64 * 64 * 32 / 2);
  c.varlen = true;
  ASSERT_TRUE(AttentionRun::create(c, Device::cpu(), 5, &run).is_ok());
  double flops = 0;
  for (size_t b = 0; b < run->lengths_q().size(); ++b) {
    const double lq = run->lengths_q()[b], lk = run->lengths_k()[b];
    flops += 4.0 * 2 * lq * lk * 32 * (lq == lk ? 0.5 : 1.0);
  }
  EXPECT_DOUBLE_EQ(run->flops(), flops);
  DecodeCase d;
  d.dtype = DType::kFloat16;
  d.batch = 3;
  d.heads = 8;
  d.heads_kv = 2;
  d.head_dim = 64;
  d.kv_len = 100;
  d.ragged = true;
  std::unique_ptr<DecodeRun> drun;
  ASSERT_TRUE(DecodeRun::create(d, Device::cpu(), 5, &drun).is_ok());
  double keys = 0;
  for (int32_t n : drun->cache_seqlens()) keys += n;
  EXPECT_DOUBLE_EQ(drun->bytes(), keys * 2 * 64 * 2 * 2);
  // Ragged lengths include an empty and a full sequence.
  const auto& lens = drun->cache_seqlens();
  EXPECT_NE(std::find(lens.begin(), lens.end(), 0), lens.end());
  EXPECT_NE(std::find(lens.begin(), lens.end(), 100), lens.end());
}

}  // namespace
}  // namespace sfa::testing
