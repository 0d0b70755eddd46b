// Kernel names and kernel selection on the CPU: names round-trip, auto picks the CPU kernels,
// and the workspace sizes follow select.cpp's split rule and layout.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "cpu/cpu_backend.h"
#include "cuda/cuda_backend.h"
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

// ---- selection rules of the CUDA kernels --------------------------------------------------------
// select_kernel() validates and selects without touching device memory, so views at fake (aligned)
// CUDA addresses exercise every rule of select.cpp. Needs a CUDA device to name.

TensorView fake_cuda(DType t, std::initializer_list<int64_t> shape, uintptr_t address) {
  int64_t s[kMaxRank] = {};
  int rank = 0;
  for (int64_t x : shape) s[rank++] = x;
  return make_tensor(reinterpret_cast<void*>(address), t, Device::cuda(0), rank, s);
}

AttentionArgs cuda_attention(DType t, int head_dim, bool varlen) {
  AttentionArgs a;
  if (varlen) {
    a.q = fake_cuda(t, {40, 4, head_dim}, 0x100000);
    a.k = fake_cuda(t, {50, 2, head_dim}, 0x200000);
    a.v = fake_cuda(t, {50, 2, head_dim}, 0x300000);
    a.out = fake_cuda(t, {40, 4, head_dim}, 0x400000);
    a.cu_seqlens_q = fake_cuda(DType::kInt32, {3}, 0x500000);
    a.cu_seqlens_k = fake_cuda(DType::kInt32, {3}, 0x600000);
    a.max_seqlen_q = 30;
    a.max_seqlen_k = 30;
  } else {
    a.q = fake_cuda(t, {2, 20, 4, head_dim}, 0x100000);
    a.k = fake_cuda(t, {2, 25, 2, head_dim}, 0x200000);
    a.v = fake_cuda(t, {2, 25, 2, head_dim}, 0x300000);
    a.out = fake_cuda(t, {2, 20, 4, head_dim}, 0x400000);
  }
  return a;
}

DecodeArgs cuda_decode(DType t, int head_dim, int seqlen_q) {
  DecodeArgs a;
  a.q = fake_cuda(t, {2, seqlen_q, 8, head_dim}, 0x100000);
  a.k_cache = fake_cuda(t, {2, 4096, 2, head_dim}, 0x1000000);
  a.v_cache = fake_cuda(t, {2, 4096, 2, head_dim}, 0x4000000);
  a.out = fake_cuda(t, {2, seqlen_q, 8, head_dim}, 0x200000);
  return a;
}

// select_kernel() refuses `kernel` with `why` (a CUDA kernel missing from this build: "not built").
template <typename Args, typename Select>
void expect_refused(Kernel kernel, Args args, Select select, const std::string& why) {
  args.kernel = kernel;
  Kernel chosen = Kernel::kAuto;
  const Status st = select(args, &chosen);
  EXPECT_EQ(st.code(), StatusCode::kUnsupported) << kernel_name(kernel) << ": " << st.message();
  const bool cpu_kernel =
      kernel == Kernel::kCpuReference || kernel == Kernel::kCpuFlash || kernel == Kernel::kCpuDecode;
  const std::string expected = cpu_kernel || cuda::has_kernel(kernel) ? why : "not built into this library";
  EXPECT_NE(st.message().find(expected), std::string::npos) << st.message() << "\nexpected: " << expected;
}

TEST(SelectKernel, CudaAttentionRules) {
  SFA_SKIP_WITHOUT_GPU();
  auto dense = [](const AttentionArgs& a, Kernel* k) { return select_kernel(a, false, k); };
  auto packed = [](const AttentionArgs& a, Kernel* k) { return select_kernel(a, true, k); };
  expect_refused(Kernel::kFa2Mma, cuda_attention(DType::kFloat32, 64, false), dense,
                 "needs float16 or bfloat16, got float32");
  expect_refused(Kernel::kFa2Mma, cuda_attention(DType::kFloat16, 80, false), dense,
                 "head_dim must be 32, 64, 96, 128, 192 or 256, got 80");
  expect_refused(Kernel::kStandard, cuda_attention(DType::kFloat16, 64, true), packed, "dense batches only");
  expect_refused(Kernel::kCpuFlash, cuda_attention(DType::kFloat16, 64, false), dense,
                 "runs on CPU tensors; q is on CUDA");
  expect_refused(Kernel::kDecodeFast, cuda_attention(DType::kFloat16, 64, false), dense,
                 "is a decode kernel; call decode()");
  // auto: the tensor-core kernel for half precision where it is built, else the SIMT FA-2.
  Kernel k = Kernel::kAuto;
  if (cuda::has_kernel(Kernel::kFa2)) {
    ASSERT_TRUE(select_kernel(cuda_attention(DType::kFloat32, 64, false), false, &k).is_ok());
    EXPECT_EQ(k, Kernel::kFa2);
    ASSERT_TRUE(select_kernel(cuda_attention(DType::kBFloat16, 80, true), true, &k).is_ok());
    EXPECT_EQ(k, Kernel::kFa2);
  }
  if (cuda::has_kernel(Kernel::kFa2Mma)) {
    ASSERT_TRUE(select_kernel(cuda_attention(DType::kBFloat16, 128, true), true, &k).is_ok());
    EXPECT_EQ(k, Kernel::kFa2Mma);
  }
}

TEST(SelectKernel, CudaDecodeRules) {
  SFA_SKIP_WITHOUT_GPU();
  auto select = [](const DecodeArgs& a, Kernel* k) { return select_kernel(a, k); };
  expect_refused(Kernel::kDecodeFast, cuda_decode(DType::kFloat32, 128, 1), select,
                 "needs float16 or bfloat16, got float32");
  expect_refused(Kernel::kDecodeFast, cuda_decode(DType::kFloat16, 96, 1), select,
                 "head_dim must be 64, 128 or 256, got 96");
  expect_refused(Kernel::kDecodeFast, cuda_decode(DType::kFloat16, 128, 9), select,
                 "at most 8 new tokens per sequence, got seqlen_q = 9");
  expect_refused(Kernel::kFa2, cuda_decode(DType::kFloat16, 128, 1), select, "is a prefill kernel; call attention()");
  expect_refused(Kernel::kCpuDecode, cuda_decode(DType::kFloat16, 128, 1), select,
                 "runs on CPU tensors; q is on CUDA");
  Kernel k = Kernel::kAuto;
  if (cuda::has_kernel(Kernel::kDecode)) {
    ASSERT_TRUE(select_kernel(cuda_decode(DType::kFloat32, 128, 1), &k).is_ok());
    EXPECT_EQ(k, Kernel::kDecode);
  }
  if (cuda::has_kernel(Kernel::kDecodeFast)) {
    ASSERT_TRUE(select_kernel(cuda_decode(DType::kFloat16, 128, 4), &k).is_ok());
    EXPECT_EQ(k, Kernel::kDecodeFast);
  }
  // Two sequences of 4096 keys on a GPU: the heuristic splits them.
  size_t bytes = 0;
  if (select_kernel(cuda_decode(DType::kFloat16, 128, 1), &k).is_ok()) {
    ASSERT_TRUE(decode_workspace_size(cuda_decode(DType::kFloat16, 128, 1), &bytes).is_ok());
    EXPECT_GT(bytes, 0u);
  }
}

TEST(BuildInfo, CpuOnlyWithoutDevices) {
  EXPECT_GE(cuda_device_count(), 0);
  if (!built_with_cuda()) {
    EXPECT_EQ(cuda_device_count(), 0);
  }
  EXPECT_EQ(gpu_available(), built_with_cuda() && cuda_device_count() > 0);
}

TEST(BuildInfo, KernelBuilt) {
  for (Kernel k : {Kernel::kAuto, Kernel::kCpuReference, Kernel::kCpuFlash, Kernel::kCpuDecode}) {
    EXPECT_TRUE(kernel_built(k)) << kernel_name(k);
  }
  for (Kernel k : {Kernel::kStandard, Kernel::kFa1, Kernel::kFa2, Kernel::kDecode, Kernel::kFa2Mma,
                   Kernel::kDecodeFast}) {
    if (!built_with_cuda()) {
      EXPECT_FALSE(kernel_built(k)) << kernel_name(k);
    }
  }
  EXPECT_FALSE(kernel_built(static_cast<Kernel>(999)));
}

}  // namespace
}  // namespace sfa::testing
