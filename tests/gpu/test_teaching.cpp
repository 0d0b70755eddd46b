// The teaching kernels (fa1, fa2, decode) and the standard-attention baseline against the CPU
// float64 reference: the DESIGN.md case tables in float32, float16 and bfloat16, outputs
// poisoned with NaN before each run, lse checked; standard is also checked as a GPU oracle for a
// case too large for the CPU reference to be quick.
//
// Tests (kernel x dtype instances):
//   Teaching/TeachingAttention.CaseTable/<kernel>_<dtype>, Teaching/TeachingDecode.CaseTable/...
//       the small DESIGN.md case tables
//   .../Sanitize/...  a few tiny cases per kernel through every code path (partial tiles, each
//       head-dim bucket, masks, GQA, varlen, strided, paged, splits): cheap enough for
//       compute-sanitizer (scripts/gpu-check runs memcheck and racecheck on '*Sanitize*')
//   TeachingFull.*    the full float32 tables and a 3000-long causal case against standard
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "served_cases.h"
#include "testing.h"

namespace sfa::testing {
namespace {

constexpr DType kDTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16};

// Runs every case the kernel supports (standard has no varlen); returns how many ran.
int run_attention_cases(Kernel kernel, const std::vector<AttentionCase>& cases,
                        Kernel reference = Kernel::kCpuReference) {
  return run_served_cases(kernel, cases, reference);
}

int run_decode_cases(const std::vector<DecodeCase>& cases) {
  int ran = 0;
  for (const DecodeCase& c : cases) {
    const CaseResult r = run_decode_case(c, Kernel::kDecode, Device::cuda(0), next_seed());
    EXPECT_TRUE(r.passed()) << r.summary();
    ++ran;
  }
  return ran;
}

AttentionCase attn(DType t, int b, int sq, int sk, int h, int hkv, int d) {
  AttentionCase c;
  c.dtype = t, c.batch = b, c.seqlen_q = sq, c.seqlen_k = sk, c.heads = h, c.heads_kv = hkv, c.head_dim = d;
  return c;
}

DecodeCase dec(DType t, int b, int sq, int h, int hkv, int d, int kv) {
  DecodeCase c;
  c.dtype = t, c.batch = b, c.seqlen_q = sq, c.heads = h, c.heads_kv = hkv, c.head_dim = d, c.kv_len = kv;
  return c;
}

// Tiny cases through every branch of the prefill kernels: partial tiles, every head-dim bucket,
// causal with empty rows, a window, softcap, GQA, varlen with empty sequences, strided views.
std::vector<AttentionCase> sanitize_attention_cases(DType t) {
  std::vector<AttentionCase> v;
  v.push_back(attn(t, 2, 70, 70, 2, 1, 64));
  AttentionCase c = attn(t, 1, 97, 33, 2, 2, 128);
  c.causal = true;
  v.push_back(c);
  c = attn(t, 1, 65, 130, 4, 2, 256);
  c.window_left = 20, c.window_right = 3, c.softcap = 5.0f;
  v.push_back(c);
  c = attn(t, 3, 80, 80, 2, 1, 40);
  c.varlen = true, c.causal = true;
  v.push_back(c);
  c = attn(t, 2, 17, 17, 2, 2, 96);
  c.strided = true;
  v.push_back(c);
  return v;
}

std::vector<DecodeCase> sanitize_decode_cases(DType t) {
  std::vector<DecodeCase> v;
  v.push_back(dec(t, 2, 1, 4, 2, 128, 300));  // heuristic splits
  DecodeCase c = dec(t, 3, 2, 4, 1, 256, 200);
  c.ragged = true, c.num_splits = 3;
  v.push_back(c);
  c = dec(t, 2, 1, 4, 4, 8, 100);  // the smallest head dim: 4-lane key groups
  c.page_size = 16, c.num_splits = 1, c.window_left = 30;
  v.push_back(c);
  c = dec(t, 2, 1, 8, 2, 80, 150);
  c.page_size = 1, c.ragged = true, c.softcap = 5.0f;
  v.push_back(c);
  return v;
}

std::string dtype_label(DType t) {
  return t == DType::kFloat32 ? "fp32" : t == DType::kFloat16 ? "fp16" : "bf16";
}

class TeachingAttention : public ::testing::TestWithParam<std::tuple<Kernel, DType>> {};

TEST_P(TeachingAttention, CaseTable) {
  const auto [kernel, dtype] = GetParam();
  SFA_SKIP_WITHOUT_KERNELS(kernel);
  EXPECT_GT(run_attention_cases(kernel, attention_case_table(dtype, /*small=*/true)), 0);
}

TEST_P(TeachingAttention, Sanitize) {
  const auto [kernel, dtype] = GetParam();
  SFA_SKIP_WITHOUT_KERNELS(kernel);
  EXPECT_GT(run_attention_cases(kernel, sanitize_attention_cases(dtype)), 0);
}

INSTANTIATE_TEST_SUITE_P(
    Teaching, TeachingAttention,
    ::testing::Combine(::testing::Values(Kernel::kFa1, Kernel::kFa2, Kernel::kStandard),
                       ::testing::ValuesIn(kDTypes)),
    [](const ::testing::TestParamInfo<TeachingAttention::ParamType>& info) {
      return std::string(kernel_name(std::get<0>(info.param))) + "_" + dtype_label(std::get<1>(info.param));
    });

class TeachingDecode : public ::testing::TestWithParam<DType> {};

TEST_P(TeachingDecode, CaseTable) {
  SFA_SKIP_WITHOUT_KERNELS(Kernel::kDecode);
  EXPECT_GT(run_decode_cases(decode_case_table(GetParam(), /*small=*/true)), 0);
}

TEST_P(TeachingDecode, Sanitize) {
  SFA_SKIP_WITHOUT_KERNELS(Kernel::kDecode);
  EXPECT_GT(run_decode_cases(sanitize_decode_cases(GetParam())), 0);
}

INSTANTIATE_TEST_SUITE_P(Teaching, TeachingDecode, ::testing::ValuesIn(kDTypes),
                         [](const ::testing::TestParamInfo<DType>& info) {
                           return "decode_" + dtype_label(info.param);
                         });

// The full tables (1025-long sequences, kv 32k) in float32, the teaching kernels' own dtype.
// Each case is created once and its (cached) reference shared by the three kernels.
TEST(TeachingFull, Float32CaseTables) {
  SFA_SKIP_WITHOUT_KERNELS(Kernel::kFa1, Kernel::kFa2, Kernel::kStandard);
  for (const AttentionCase& c : attention_case_table(DType::kFloat32, /*small=*/false)) {
    std::unique_ptr<AttentionRun> run;
    const Status st = AttentionRun::create(c, Device::cuda(0), next_seed(), &run);
    ASSERT_TRUE(st.is_ok()) << c.describe() << ": " << st.message();
    for (Kernel k : {Kernel::kFa1, Kernel::kFa2, Kernel::kStandard}) {
      if (!serves(k, *run)) continue;
      const Status ran = run->run(k);
      EXPECT_TRUE(ran.is_ok()) << kernel_name(k) << " [" << c.describe() << "]: " << ran.message();
      if (!ran) continue;
      const CaseResult r = run->verify();
      EXPECT_TRUE(r.passed()) << r.summary();
    }
  }
  EXPECT_GT(run_decode_cases(decode_case_table(DType::kFloat32, /*small=*/false)), 0);
}

// Standard attention as the oracle of a case too long for a quick CPU reference, and fa2 as the
// oracle of standard at the same size (both float32).
TEST(TeachingFull, LongSequenceAgainstStandard) {
  SFA_SKIP_WITHOUT_KERNELS(Kernel::kFa1, Kernel::kFa2, Kernel::kStandard);
  AttentionCase c = attn(DType::kFloat32, 2, 3000, 3000, 4, 2, 128);
  c.causal = true;
  EXPECT_GT(run_attention_cases(Kernel::kFa2, {c}, Kernel::kStandard), 0);
  EXPECT_GT(run_attention_cases(Kernel::kFa1, {c}, Kernel::kStandard), 0);
  EXPECT_GT(run_attention_cases(Kernel::kStandard, {c}, Kernel::kFa2), 0);
}

// auto picks the SIMT FA-2 kernel for float32 on CUDA.
TEST(TeachingSelect, AutoPicksFa2ForFloat32) {
  SFA_SKIP_WITHOUT_KERNELS(Kernel::kFa1, Kernel::kFa2, Kernel::kStandard);
  std::unique_ptr<AttentionRun> run;
  ASSERT_TRUE(AttentionRun::create(attn(DType::kFloat32, 1, 17, 17, 2, 2, 64), Device::cuda(0), next_seed(), &run));
  Kernel k = Kernel::kCpuReference;
  ASSERT_TRUE(select_kernel(run->args(Kernel::kAuto), false, &k));
  EXPECT_EQ(k, Kernel::kFa2);
}

}  // namespace
}  // namespace sfa::testing
