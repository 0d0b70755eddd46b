// fa2_mma (tensor-core FlashAttention-2) against the CPU float64 reference: the DESIGN.md case
// table in both half types, every head dim it is built for with several tiles per sequence,
// masks that cut tiles in every way, a negative scale, determinism (two runs bitwise equal) and
// untrusted cu_seqlens.
//
// The "Small" suites keep every launch small enough for compute-sanitizer (memcheck, racecheck).
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "api/validate.h"
#include "served_cases.h"
#include "testing.h"
#ifdef SFA_TEST_FA2_MMA_LAUNCHER
#include "cuda/cuda_backend.h"
#include "cuda/launchers.h"
#endif

namespace sfa::testing {
namespace {

constexpr Kernel kKernel = Kernel::kFa2Mma;
constexpr DType kHalfTypes[] = {DType::kFloat16, DType::kBFloat16};
constexpr int kHeadDims[] = {32, 64, 96, 128, 192, 256};

// Runs every case fa2_mma supports; returns how many ran.
int run_cases(const std::vector<AttentionCase>& cases) { return run_served_cases(kKernel, cases); }

constexpr auto make_case = attention_case;

// Every head dim with several query and key tiles, ragged ends, each mask kind, softcap and a
// negative scale; `small` keeps the sequences short for the sanitizer.
std::vector<AttentionCase> head_dim_cases(DType t, bool small) {
  const int len = small ? 150 : 700;
  std::vector<AttentionCase> v;
  for (int d : kHeadDims) {
    v.push_back(make_case(t, 2, len, len + 37, 4, 2, d));
    AttentionCase c = make_case(t, 1, len, len, 2, 1, d);
    c.causal = true;
    v.push_back(c);
    c = make_case(t, 2, len + 70, len - 11, 4, 1, d);  // bottom-right causal, empty top rows
    c.causal = true;
    v.push_back(c);
    c = make_case(t, 1, len, len, 2, 2, d);  // a window narrower than a key tile
    c.window_left = 45;
    c.window_right = 10;
    v.push_back(c);
    c = make_case(t, 3, len, len, 2, 1, d);
    c.varlen = true;
    c.causal = true;
    v.push_back(c);
    c = make_case(t, 1, len, len / 2, 2, 1, d);
    c.strided = true;
    c.softcap = 20.0f;
    v.push_back(c);
    // A negative softmax scale: the key loop for transformed scores (as softcap), not the one
    // for plain scores.
    c = make_case(t, 1, len / 2 + 3, len, 2, 1, d);
    c.softmax_scale = -0.1f;
    v.push_back(c);
  }
  return v;
}

TEST(Fa2MmaSmall, CaseTable) {
  SFA_SKIP_WITHOUT_KERNELS(kKernel);
  for (DType t : kHalfTypes) EXPECT_GT(run_cases(attention_case_table(t, true)), 0);
}

TEST(Fa2MmaSmall, EveryHeadDim) {
  SFA_SKIP_WITHOUT_KERNELS(kKernel);
  for (DType t : kHalfTypes) EXPECT_GT(run_cases(head_dim_cases(t, true)), 0);
}

TEST(Fa2Mma, FullCaseTable) {
  SFA_SKIP_WITHOUT_KERNELS(kKernel);
  for (DType t : kHalfTypes) EXPECT_GT(run_cases(attention_case_table(t, false)), 0);
}

TEST(Fa2Mma, EveryHeadDimLong) {
  SFA_SKIP_WITHOUT_KERNELS(kKernel);
  for (DType t : kHalfTypes) EXPECT_GT(run_cases(head_dim_cases(t, false)), 0);
}

// A large softmax scale: a row's weight sits on a few keys, and its maximum rises by several
// powers of 2 from one key block to the next, so alpha rescales O and l by tiny factors in the
// middle of the key loop.
TEST(Fa2MmaSmall, PeakedScores) {
  SFA_SKIP_WITHOUT_KERNELS(kKernel);
  std::vector<AttentionCase> v;
  for (DType t : kHalfTypes) {
    for (int d : kHeadDims) {
      for (float scale : {0.7f, 1.5f}) {
        AttentionCase c = make_case(t, 1, 200, 333, 2, 1, d);
        c.softmax_scale = scale;
        v.push_back(c);
        c.causal = true;
        v.push_back(c);
      }
    }
  }
  EXPECT_GT(run_cases(v), 0);
}

// Copies a device tensor view's bytes (its whole strided span) to the host.
std::vector<unsigned char> device_bytes(const TensorView& t) {
  int64_t span = 1;
  for (int i = 0; i < t.rank; ++i) span += (t.shape[i] - 1) * t.stride[i];
  std::vector<unsigned char> bytes(span * dtype_size(t.dtype));
  EXPECT_EQ(cudaMemcpy(bytes.data(), t.data, bytes.size(), cudaMemcpyDeviceToHost), cudaSuccess);
  return bytes;
}

// Causal launches of at least 2048 query rows per head (4096 on the wgmma kernel at head_dim 256),
// where the heaviest query blocks of a group of heads run first (auto_group_heads); the first has
// more (batch, head) pairs than one group holds, so the last group is short (a group holds half the
// resident blocks: 132 on an H100 for the mma.sync tiles of head_dim 64).
TEST(Fa2Mma, CausalLaunchGroups) {
  SFA_SKIP_WITHOUT_KERNELS(kKernel);
  std::vector<AttentionCase> v;
  AttentionCase many = make_case(DType::kBFloat16, 2, 2100, 2100, 70, 10, 64);
  many.causal = true;
  v.push_back(many);
  for (int d : {128, 256}) {
    AttentionCase c = make_case(DType::kBFloat16, 1, 2100, 2100, 12, 4, d);
    c.causal = true;
    v.push_back(c);
  }
  AttentionCase g = make_case(DType::kBFloat16, 1, 4100, 4100, 4, 2, 256);
  g.causal = true;
  v.push_back(g);
  AttentionCase w = make_case(DType::kFloat16, 1, 2100, 2200, 6, 6, 256);  // a window, bottom-right
  w.window_left = 300;
  w.window_right = 0;
  v.push_back(w);
  EXPECT_GT(run_cases(v), 0);
}

TEST(Fa2MmaSmall, Deterministic) {
  SFA_SKIP_WITHOUT_KERNELS(kKernel);
  for (DType t : kHalfTypes) {
    for (int d : {128, 256}) {  // 256 on mma.sync tiles: warp pairs add row sums through shared memory
      AttentionCase c = make_case(t, 2, 300, 333, 4, 2, d);
      c.causal = true;
      std::unique_ptr<AttentionRun> run;
      ASSERT_TRUE(AttentionRun::create(c, Device::cuda(0), next_seed(), &run).is_ok());
      const AttentionArgs args = run->args(kKernel);
      ASSERT_TRUE(run->run(kKernel).is_ok());
      const auto out1 = device_bytes(args.out), lse1 = device_bytes(args.lse);
      ASSERT_TRUE(run->run(kKernel).is_ok());
      EXPECT_EQ(out1, device_bytes(args.out)) << c.describe();
      EXPECT_EQ(lse1, device_bytes(args.lse)) << c.describe();
      EXPECT_TRUE(run->verify().passed());
    }
  }
}

// On compute capability 9.0 the library runs head_dim 64, 128 and 256 on the wgmma kernel; the
// mma.sync tiles of those head dims (what every other GPU runs) are checked here through the
// launcher, on the EveryHeadDim cases, poisoned outputs and all.
TEST(Fa2MmaSmall, MmaSyncTilesBesideWgmma) {
  SFA_SKIP_WITHOUT_KERNELS(kKernel);
#ifndef SFA_TEST_FA2_MMA_LAUNCHER
  GTEST_SKIP() << "the fa2_mma launcher is not in this build";
#else
  cuda::DeviceInfo info;
  ASSERT_TRUE(cuda::device_info(0, &info).is_ok());
  if (info.sm_arch() != 90) GTEST_SKIP() << "the mma.sync tiles are what auto runs on this GPU (EveryHeadDim)";
  int ran = 0;
  for (DType t : kHalfTypes) {
    for (const AttentionCase& c : head_dim_cases(t, true)) {
      if (c.head_dim != 64 && c.head_dim != 128 && c.head_dim != 256) continue;
      std::unique_ptr<AttentionRun> run;
      ASSERT_TRUE(AttentionRun::create(c, Device::cuda(0), next_seed(), &run).is_ok());
      ASSERT_TRUE(run->poison(kKernel).is_ok());
      const AttentionArgs args = run->args(kKernel);
      AttentionProblem prob;
      Device dev;
      ASSERT_TRUE(validate_attention(args, c.varlen, &prob, &dev).is_ok()) << c.describe();
      ASSERT_TRUE(cuda::launch_fa2_mma(prob, info, nullptr, /*wgmma=*/false).is_ok()) << c.describe();
      const CaseResult r = run->verify();
      EXPECT_TRUE(r.passed()) << "mma.sync tiles: " << r.summary();
      ++ran;
    }
  }
  EXPECT_GT(ran, 0);
#endif
}

// cu_seqlens are device data the library cannot check: lengths that are negative, too long or
// past the packed rows must be treated as empty sequences, never read out of bounds.
TEST(Fa2MmaSmall, UntrustedCuSeqlens) {
  SFA_SKIP_WITHOUT_KERNELS(kKernel);
  AttentionCase c = make_case(DType::kBFloat16, 4, 64, 64, 2, 1, 64);
  c.varlen = true;
  std::unique_ptr<AttentionRun> run;
  ASSERT_TRUE(AttentionRun::create(c, Device::cuda(0), next_seed(), &run).is_ok());
  const AttentionArgs args = run->args(kKernel);
  const int batch = static_cast<int>(args.cu_seqlens_k.shape[0]) - 1;
  std::vector<int32_t> bad_k(batch + 1), bad_q(batch + 1);
  ASSERT_EQ(cudaMemcpy(bad_q.data(), args.cu_seqlens_q.data, sizeof(int32_t) * (batch + 1),
                       cudaMemcpyDeviceToHost), cudaSuccess);
  bad_k = {0, 1 << 30, -5, 3, static_cast<int32_t>(args.k.shape[0]) + 100};  // past total_k
  bad_q[2] = bad_q[3] + 7;                                                  // decreasing
  ASSERT_EQ(cudaMemcpy(args.cu_seqlens_k.data, bad_k.data(), sizeof(int32_t) * (batch + 1),
                       cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(args.cu_seqlens_q.data, bad_q.data(), sizeof(int32_t) * (batch + 1),
                       cudaMemcpyHostToDevice), cudaSuccess);
  const Status st = run->launch(kKernel);
  EXPECT_TRUE(st.is_ok()) << st.message();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

}  // namespace
}  // namespace sfa::testing
