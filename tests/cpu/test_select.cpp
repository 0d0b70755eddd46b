// Kernel names and kernel selection on the CPU: names round-trip, auto picks the CPU kernels,
// and the workspace sizes follow select.cpp's split rule and layout.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "cpu/cpu_backend.h"
#include "testing.h"

namespace sfa::testing {
namespace {

constexpr Kernel kAllKernels[] = {Kernel::kAuto, Kernel::kCpuReference, Kernel::kCpuFlash, Kernel::kCpuDecode,
                                  Kernel::kStandard, Kernel::kFa1, Kernel::kFa2, Kernel::kDecode,
                                  Kernel::kFa2Mma, Kernel::kDecodeFast};

TEST(KernelNames, RoundTrip) {
  for (Kernel k : kAllKernels) {
    Kernel parsed = Kernel::kAuto;
    const char* name = kernel_name(k);
    ASSERT_TRUE(kernel_from_name(name, &parsed).is_ok()) << name;
    EXPECT_EQ(parsed, k) << name;
  }
  EXPECT_STREQ(kernel_name(Kernel::kFa2Mma), "fa2_mma");
  EXPECT_STREQ(kernel_name(Kernel::kCpuFlash), "cpu-flash");
  EXPECT_STREQ(kernel_name(static_cast<Kernel>(1234)), "unknown");
}

TEST(KernelNames, UnknownNames) {
  Kernel k = Kernel::kFa1;
  Status st = kernel_from_name("fa3000", &k);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("kernel: expected one of auto, cpu-reference"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("got 'fa3000'"), std::string::npos) << st.message();
  EXPECT_EQ(k, Kernel::kFa1);  // untouched on error
  st = kernel_from_name(nullptr, &k);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("got '(null)'"), std::string::npos) << st.message();
  EXPECT_FALSE(kernel_from_name("FA2", &k).is_ok());  // names are case-sensitive
  EXPECT_FALSE(kernel_from_name("", &k).is_ok());
}

std::unique_ptr<AttentionRun> attention_run(bool varlen) {
  AttentionCase c;
  c.batch = 2;
  c.seqlen_q = 9;
  c.seqlen_k = 9;
  c.heads = 2;
  c.heads_kv = 1;
  c.head_dim = 32;
  c.varlen = varlen;
  std::unique_ptr<AttentionRun> run;
  EXPECT_TRUE(AttentionRun::create(c, Device::cpu(), next_seed(), &run).is_ok());
  return run;
}

TEST(SelectKernel, AttentionOnCpu) {
  for (bool varlen : {false, true}) {
    std::unique_ptr<AttentionRun> run = attention_run(varlen);
    Kernel k = Kernel::kAuto;
    size_t bytes = 1;
    ASSERT_TRUE(select_kernel(run->args(Kernel::kAuto), varlen, &k).is_ok());
    EXPECT_EQ(k, Kernel::kCpuFlash);
    ASSERT_TRUE(select_kernel(run->args(Kernel::kCpuReference), varlen, &k).is_ok());
    EXPECT_EQ(k, Kernel::kCpuReference);
    for (Kernel named : {Kernel::kAuto, Kernel::kCpuReference, Kernel::kCpuFlash}) {
      ASSERT_TRUE(attention_workspace_size(run->args(named), varlen, &bytes).is_ok());
      EXPECT_EQ(bytes, 0u) << kernel_name(named);
    }
    // Every CUDA kernel refuses CPU tensors, naming itself.
    for (Kernel cuda : {Kernel::kStandard, Kernel::kFa1, Kernel::kFa2, Kernel::kFa2Mma}) {
      const Status st = select_kernel(run->args(cuda), varlen, &k);
      EXPECT_EQ(st.code(), StatusCode::kUnsupported);
      EXPECT_NE(st.message().find(std::string("kernel '") + kernel_name(cuda) + "'"), std::string::npos);
    }
  }
}

DecodeCase decode_case(int batch, int heads, int kv_len, int splits) {
  DecodeCase c;
  c.batch = batch;
  c.seqlen_q = 2;
  c.heads = heads;
  c.heads_kv = 1;
  c.head_dim = 32;
  c.kv_len = kv_len;
  c.num_splits = splits;
  return c;
}

// select.cpp's layout: partial out [splits, batch, seqlen_q, heads, head_dim] float32 and partial
// lse [splits, batch, seqlen_q, heads] float32, each rounded up to 256 bytes.
size_t expected_workspace(const DecodeCase& c, int splits) {
  if (splits <= 1) return 0;
  auto align = [](size_t n) { return (n + 255) / 256 * 256; };
  const size_t rows = static_cast<size_t>(splits) * c.batch * c.seqlen_q * c.heads;
  return align(rows * c.head_dim * 4) + align(rows * 4);
}

TEST(SelectKernel, DecodeOnCpu) {
  const DecodeCase c = decode_case(2, 4, 1000, 5);
  std::unique_ptr<DecodeRun> run;
  ASSERT_TRUE(DecodeRun::create(c, Device::cpu(), next_seed(), &run).is_ok());
  Kernel k = Kernel::kAuto;
  ASSERT_TRUE(select_kernel(run->args(Kernel::kAuto), &k).is_ok());
  EXPECT_EQ(k, Kernel::kCpuDecode);
  size_t bytes = 0;
  ASSERT_TRUE(decode_workspace_size(run->args(Kernel::kAuto), &bytes).is_ok());
  EXPECT_EQ(bytes, expected_workspace(c, 5));
  // The reference never splits, so it needs no workspace.
  ASSERT_TRUE(decode_workspace_size(run->args(Kernel::kCpuReference), &bytes).is_ok());
  EXPECT_EQ(bytes, 0u);
  const Status st = select_kernel(run->args(Kernel::kDecode), &k);
  EXPECT_EQ(st.code(), StatusCode::kUnsupported);
}

// The CPU split heuristic: enough splits to give every thread work, at least 256 keys per split.
TEST(SelectKernel, DecodeSplitHeuristicOnCpu) {
  const char* old = std::getenv("SFA_NUM_THREADS");
  const std::string saved = old ? old : "";
  setenv("SFA_NUM_THREADS", "8", 1);
  EXPECT_EQ(cpu::num_threads(), 8);
  struct Expect {
    int batch, heads, kv_len, splits;
  };
  // 8 threads: one (sequence, head) needs 8 splits if the cache is long enough; 4 items need 2;
  // a short cache (< 512 keys) never splits.
  for (const Expect& e : {Expect{1, 1, 4096, 8}, Expect{1, 4, 4096, 2}, Expect{1, 1, 700, 2},
                          Expect{1, 1, 300, 1}, Expect{8, 4, 4096, 1}}) {
    const DecodeCase c = decode_case(e.batch, e.heads, e.kv_len, 0);
    std::unique_ptr<DecodeRun> run;
    ASSERT_TRUE(DecodeRun::create(c, Device::cpu(), next_seed(), &run).is_ok());
    size_t bytes = 0;
    ASSERT_TRUE(decode_workspace_size(run->args(Kernel::kCpuDecode), &bytes).is_ok());
    EXPECT_EQ(bytes, expected_workspace(c, e.splits)) << c.describe();
  }
  setenv("SFA_NUM_THREADS", "not-a-number", 1);
  EXPECT_GE(cpu::num_threads(), 1);
  setenv("SFA_NUM_THREADS", "0", 1);
  EXPECT_GE(cpu::num_threads(), 1);
  if (old) {
    setenv("SFA_NUM_THREADS", saved.c_str(), 1);
  } else {
    unsetenv("SFA_NUM_THREADS");
  }
}

TEST(BuildInfo, CpuOnlyWithoutDevices) {
  EXPECT_GE(cuda_device_count(), 0);
  if (!built_with_cuda()) {
    EXPECT_EQ(cuda_device_count(), 0);
  }
  EXPECT_EQ(gpu_available(), built_with_cuda() && cuda_device_count() > 0);
}

}  // namespace
}  // namespace sfa::testing
