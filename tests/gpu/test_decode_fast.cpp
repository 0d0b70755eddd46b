// decode_fast against the CPU float64 reference: the DESIGN.md decode case table (both dtypes),
// extra shapes (many packed rows, MQA, head_dim 256 with many splits), untrusted lengths and page
// indices, and a CUDA-graph capture of the whole decode() call replayed against eager results.
//
// The "Small" suites keep every launch small enough for compute-sanitizer (memcheck, racecheck).
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/dtype_convert.h"
#include "served_cases.h"
#include "testing.h"

namespace sfa::testing {
namespace {

constexpr Kernel kKernel = Kernel::kDecodeFast;

// Runs every case decode_fast supports (head_dim 64/128/256, at most 8 new tokens, half types);
// returns how many ran.
int run_cases(const std::vector<DecodeCase>& cases) { return run_served_cases(kKernel, cases); }

constexpr auto make_case = decode_case;

// Shapes the shared table does not reach: more than one row tile (64 packed rows), MQA, the
// largest head dim with the most splits, a window shorter than a tile, fp16 scores near overflow.
std::vector<DecodeCase> extra_cases(DType t) {
  std::vector<DecodeCase> v;
  DecodeCase c = make_case(t, 3, 8, 64, 8, 128, 700);
  c.ragged = true;
  v.push_back(c);
  c = make_case(t, 2, 1, 16, 1, 128, 2000);
  c.page_size = 16;
  v.push_back(c);
  c = make_case(t, 2, 3, 8, 2, 256, 4097);
  c.num_splits = kMaxSplits;
  c.ragged = true;
  v.push_back(c);
  c = make_case(t, 2, 2, 8, 4, 64, 1000);
  c.window_left = 5;
  c.page_size = 7;
  v.push_back(c);
  c = make_case(t, 2, 1, 8, 2, 128, 1000);
  c.softmax_scale = 2.0f;
  v.push_back(c);
  // Each pass-1 variant on its awkward inputs: pages of whole tiles with a softcap (the general
  // variant's tile-page loader), with a window and ragged lengths (the page indices read with the
  // length as if the sequence filled the cache are discarded), and 256-position pages unsplit.
  c = make_case(t, 3, 1, 32, 8, 128, 1000);
  c.page_size = 16;
  c.softcap = 20.0f;
  c.num_splits = 3;
  v.push_back(c);
  c = make_case(t, 3, 2, 16, 4, 64, 1500);
  c.page_size = 32;
  c.window_left = 300;
  c.ragged = true;
  v.push_back(c);
  c = make_case(t, 2, 1, 8, 8, 256, 2000);
  c.page_size = 256;
  c.ragged = true;
  c.num_splits = 1;
  v.push_back(c);
  return v;
}

class DecodeFast : public ::testing::TestWithParam<DType> {};

TEST_P(DecodeFast, CaseTable) {
  SFA_SKIP_WITHOUT_KERNELS(kKernel);
  const int ran = run_cases(decode_case_table(GetParam(), /*small=*/false));
  EXPECT_GE(ran, 25) << "decode_fast supported too few cases of the table";
}

TEST_P(DecodeFast, ExtraCases) {
  SFA_SKIP_WITHOUT_KERNELS(kKernel);
  const std::vector<DecodeCase> cases = extra_cases(GetParam());
  EXPECT_EQ(run_cases(cases), static_cast<int>(cases.size()));
}

// Small shapes only: the suite compute-sanitizer runs.
class DecodeFastSmall : public ::testing::TestWithParam<DType> {};

TEST_P(DecodeFastSmall, CaseTable) {
  SFA_SKIP_WITHOUT_KERNELS(kKernel);
  std::vector<DecodeCase> cases;
  for (const DecodeCase& c : decode_case_table(GetParam(), /*small=*/true)) {
    if (static_cast<int64_t>(c.batch) * c.kv_len <= 4 * 1024) cases.push_back(c);
  }
  EXPECT_GE(run_cases(cases), 10);
}

// Both ways splits are merged: on sm90, 2..16 splits run as thread-block clusters that merge in
// distributed shared memory (16 where the device allows non-portable clusters); more splits, and
// every split count before sm90, go through the workspace and the combine kernel. Each case mixes
// what the merge must survive: empty splits (ragged lengths, a length-0 sequence), several row
// tiles per KV head (64 packed rows), a window, paged caches with pages of whole tiles and smaller.
std::vector<DecodeCase> merge_path_cases(DType t) {
  std::vector<DecodeCase> v;
  for (int splits : {2, 3, 5, 8, 11, 16, 17, 40}) {
    DecodeCase c = make_case(t, 3, 1, 8, 2, 128, 900);
    c.ragged = true;
    c.num_splits = splits;
    c.page_size = splits % 2 == 0 ? 16 : 0;
    v.push_back(c);
  }
  DecodeCase c = make_case(t, 2, 8, 64, 8, 64, 600);  // 64 packed rows: 4 row tiles per cluster
  c.num_splits = 4;
  c.ragged = true;
  v.push_back(c);
  c = make_case(t, 2, 2, 8, 4, 256, 700);
  c.num_splits = 6;
  c.window_left = 100;
  c.page_size = 7;
  v.push_back(c);
  c = make_case(t, 1, 1, 32, 8, 128, 1000);
  c.num_splits = 16;
  c.softcap = 30.0f;
  v.push_back(c);
  return v;
}

TEST_P(DecodeFastSmall, ClusterAndCombineMerges) {
  SFA_SKIP_WITHOUT_KERNELS(kKernel);
  const std::vector<DecodeCase> cases = merge_path_cases(GetParam());
  EXPECT_EQ(run_cases(cases), static_cast<int>(cases.size()));
}

// Grids of several waves (more blocks than SMs) run the split kernel with the shallow pipeline
// (config.h, Pipeline): each pass-1 variant there, with ragged lengths (a length-0 sequence
// among them) on a contiguous cache, pages of whole tiles, and pages smaller than a tile with a
// softcap and a window; unsplit, and split past the cluster sizes (17 splits: the split kernel
// and the combine kernel on every GPU).
TEST_P(DecodeFastSmall, SeveralWavesShallowPipeline) {
  SFA_SKIP_WITHOUT_KERNELS(kKernel);
  constexpr int kBatch = 48, kHeadsKv = 8;
  int sms = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), cudaSuccess);
  if (kBatch * kHeadsKv <= sms) GTEST_SKIP() << kBatch * kHeadsKv << " blocks fit one wave on " << sms << " SMs";
  const DType t = GetParam();
  std::vector<DecodeCase> cases;
  DecodeCase c = make_case(t, kBatch, 1, 32, kHeadsKv, 128, 300);
  c.ragged = true;
  c.num_splits = 1;
  cases.push_back(c);
  c = make_case(t, kBatch, 1, 16, kHeadsKv, 64, 200);
  c.ragged = true;
  c.page_size = 16;
  c.num_splits = 1;
  cases.push_back(c);
  c = make_case(t, kBatch, 2, 16, kHeadsKv, 128, 150);
  c.ragged = true;
  c.page_size = 7;
  c.softcap = 20.0f;
  c.window_left = 40;
  c.num_splits = 17;  // more than a cluster holds (16)
  cases.push_back(c);
  c = make_case(t, kBatch, 1, 8, kHeadsKv, 256, 120);  // head_dim 256: one pipeline depth only
  c.ragged = true;
  cases.push_back(c);
  EXPECT_EQ(run_cases(cases), static_cast<int>(cases.size()));
}

// The 16-bit elements of a device tensor, copied to the host (index them with its strides).
std::vector<uint16_t> host_bits(const TensorView& t) {
  int64_t extent = 1;  // elements up to the last one the strides reach
  for (int d = 0; d < t.rank; ++d) extent += (t.shape[d] - 1) * t.stride[d];
  std::vector<uint16_t> bits(static_cast<size_t>(extent));
  EXPECT_EQ(cudaMemcpy(bits.data(), t.data, bits.size() * 2, cudaMemcpyDeviceToHost), cudaSuccess);
  return bits;
}

// Sequence b's output for one new token, [heads][head_dim] in float64, over the cache positions
// `keys` of a paged cache (each position's page from `table`, row stride table_stride).
std::vector<std::vector<double>> paged_reference(const DecodeArgs& a, const std::vector<int32_t>& table,
                                                 int64_t table_stride, int b, const std::vector<int>& keys) {
  const std::vector<uint16_t> q = host_bits(a.q), k = host_bits(a.k_cache), v = host_bits(a.v_cache);
  const DType t = a.q.dtype;
  const int64_t d = a.q.shape[3], heads = a.q.shape[2], page = a.k_cache.shape[1];
  const double scale = a.softmax_scale > 0.0f ? a.softmax_scale : 1.0 / std::sqrt(static_cast<double>(d));
  std::vector<std::vector<double>> out(static_cast<size_t>(heads), std::vector<double>(static_cast<size_t>(d), 0.0));
  for (int64_t h = 0; h < heads; ++h) {
    const int64_t h_kv = h / (heads / a.k_cache.shape[2]);
    std::vector<int64_t> krow, vrow;  // each key's first element in k and v
    std::vector<double> s;
    double m = -INFINITY, sum = 0.0;
    for (int j : keys) {
      const int64_t pg = table[static_cast<size_t>(b * table_stride + j / page)];
      krow.push_back(pg * a.k_cache.stride[0] + (j % page) * a.k_cache.stride[1] + h_kv * a.k_cache.stride[2]);
      vrow.push_back(pg * a.v_cache.stride[0] + (j % page) * a.v_cache.stride[1] + h_kv * a.v_cache.stride[2]);
      double dot = 0.0;
      for (int64_t e = 0; e < d; ++e) {
        dot += double(load_float(q.data(), t, b * a.q.stride[0] + h * a.q.stride[2] + e)) *
               load_float(k.data(), t, krow.back() + e);
      }
      s.push_back(dot * scale);
      m = std::max(m, s.back());
    }
    for (size_t i = 0; i < keys.size(); ++i) {
      const double p = std::exp(s[i] - m);
      sum += p;
      for (int64_t e = 0; e < d; ++e) out[h][e] += p * load_float(v.data(), t, vrow[i] + e);
    }
    for (double& o : out[h]) o /= sum;
  }
  return out;
}

// Device data the validator cannot see on CUDA: lengths outside [0, capacity] and page indices
// outside [0, num_pages). The kernel must not read out of bounds (compute-sanitizer checks it),
// must not fail, and a sequence with a bad length is empty: out 0, lse -inf. The keys on a bad
// page are left out: sequence 0 matches a float64 reference over its other keys.
TEST_P(DecodeFastSmall, UntrustedLengthsAndPages) {
  SFA_SKIP_WITHOUT_KERNELS(kKernel);
  for (int splits : {1, 3, 20}) {  // the split kernel alone; sm90: a cluster merge; the combine kernel
    DecodeCase c = make_case(GetParam(), 4, 1, 8, 2, 64, 100);
    c.page_size = 16;
    c.num_splits = splits;
    std::unique_ptr<DecodeRun> run;
    ASSERT_TRUE(DecodeRun::create(c, Device::cuda(0), next_seed(), &run).is_ok());
    const DecodeArgs args = run->args(kKernel);
    const int32_t lengths[4] = {100, -7, 113, 1 << 30};  // capacity is 7 pages * 16 = 112
    ASSERT_EQ(cudaMemcpy(args.cache_seqlens.data, lengths, sizeof lengths, cudaMemcpyHostToDevice), cudaSuccess);
    const int64_t table_entries = args.block_table.shape[0] * args.block_table.shape[1];
    std::vector<int32_t> table(static_cast<size_t>(table_entries));
    ASSERT_EQ(cudaMemcpy(table.data(), args.block_table.data, table.size() * sizeof(int32_t), cudaMemcpyDeviceToHost),
              cudaSuccess);
    // Sequence 0 keeps the keys of pages 0, 3, 4, 5 and 6 (positions 0-15 and 48-99).
    std::vector<int> kept;
    for (int j = 0; j < 100; ++j) {
      if (j < 16 || j >= 48) kept.push_back(j);
    }
    const int64_t table_stride = args.block_table.stride[0];
    const std::vector<std::vector<double>> expected = paged_reference(args, table, table_stride, 0, kept);
    table[1] = -1;                   // sequence 0, page 1
    table[2] = 1 << 30;              // sequence 0, page 2
    ASSERT_EQ(cudaMemcpy(args.block_table.data, table.data(), table.size() * sizeof(int32_t), cudaMemcpyHostToDevice),
              cudaSuccess);
    ASSERT_TRUE(run->run(kKernel).is_ok());
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);

    const int64_t row_elems = static_cast<int64_t>(c.heads) * c.head_dim;
    std::vector<uint16_t> out(static_cast<size_t>(c.batch * row_elems));
    std::vector<float> lse(static_cast<size_t>(c.batch * c.heads));
    ASSERT_EQ(cudaMemcpy(out.data(), args.out.data, out.size() * 2, cudaMemcpyDeviceToHost), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(lse.data(), args.lse.data, lse.size() * 4, cudaMemcpyDeviceToHost), cudaSuccess);
    for (int b = 1; b < c.batch; ++b) {
      for (int64_t e = 0; e < row_elems; ++e) ASSERT_EQ(out[b * row_elems + e] & 0x7fffu, 0u) << "b=" << b;
      for (int h = 0; h < c.heads; ++h) EXPECT_EQ(lse[b * c.heads + h], -INFINITY) << "b=" << b;
    }
    for (int h = 0; h < c.heads; ++h) EXPECT_TRUE(std::isfinite(lse[h])) << "sequence 0 lost its valid pages";
    const bool bf16 = c.dtype == DType::kBFloat16;
    for (int h = 0; h < c.heads; ++h) {
      for (int64_t e = 0; e < c.head_dim; ++e) {
        const double got = load_float(out.data(), c.dtype, h * c.head_dim + e);
        const double want = expected[h][e];
        ASSERT_NEAR(got, want, (bf16 ? 1e-2 : 2e-3) * (1.0 + std::fabs(want)))
            << "splits=" << splits << " head " << h << " element " << e;
      }
    }
  }
}

// The whole decode() call (split kernel + combine) captured in a CUDA graph: replaying it
// reproduces the eager result bit for bit and matches the reference.
TEST_P(DecodeFastSmall, GraphCaptureMatchesEager) {
  SFA_SKIP_WITHOUT_KERNELS(kKernel);
  // num_splits 0: the heuristic (several splits at this size: a cluster launch on sm90); 20: the
  // split kernel + combine kernel.
  for (const auto& [page_size, splits] : {std::pair{0, 0}, std::pair{16, 0}, std::pair{0, 20}}) {
    DecodeCase c = make_case(GetParam(), 3, 2, 16, 4, 128, 1500);
    c.ragged = true;
    c.page_size = page_size;
    c.num_splits = splits;
    std::unique_ptr<DecodeRun> run;
    ASSERT_TRUE(DecodeRun::create(c, Device::cuda(0), next_seed(), &run).is_ok());
    cudaStream_t stream;
    ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
    ASSERT_TRUE(run->run(kKernel, stream).is_ok());  // eager (also sizes the workspace)
    const CaseResult eager_result = run->verify();
    EXPECT_TRUE(eager_result.passed()) << eager_result.summary();
    const DecodeArgs args = run->args(kKernel);
    const size_t out_bytes = static_cast<size_t>(args.out.numel()) * 2;
    const size_t lse_bytes = static_cast<size_t>(args.lse.numel()) * 4;
    std::vector<unsigned char> eager_out(out_bytes), eager_lse(lse_bytes);
    ASSERT_EQ(cudaMemcpy(eager_out.data(), args.out.data, out_bytes, cudaMemcpyDeviceToHost), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(eager_lse.data(), args.lse.data, lse_bytes, cudaMemcpyDeviceToHost), cudaSuccess);

    ASSERT_EQ(cudaMemsetAsync(args.out.data, 0xff, out_bytes, stream), cudaSuccess);  // NaN
    ASSERT_EQ(cudaMemsetAsync(args.lse.data, 0xff, lse_bytes, stream), cudaSuccess);
    cudaGraph_t graph;
    ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), cudaSuccess);
    const Status captured = run->launch(kKernel, stream);
    ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
    ASSERT_TRUE(captured.is_ok()) << captured.message();
    cudaGraphExec_t exec;
    ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
    for (int replay = 0; replay < 2; ++replay) ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);

    std::vector<unsigned char> graph_out(out_bytes), graph_lse(lse_bytes);
    ASSERT_EQ(cudaMemcpy(graph_out.data(), args.out.data, out_bytes, cudaMemcpyDeviceToHost), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(graph_lse.data(), args.lse.data, lse_bytes, cudaMemcpyDeviceToHost), cudaSuccess);
    EXPECT_EQ(graph_out, eager_out) << c.describe() << ": graph replay differs from eager out";
    EXPECT_EQ(graph_lse, eager_lse) << c.describe() << ": graph replay differs from eager lse";
    const CaseResult graph_result = run->verify();
    EXPECT_TRUE(graph_result.passed()) << graph_result.summary();
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cudaStreamDestroy(stream);
  }
}

// A first call made inside a graph capture: the launch's one-time host queries (cluster
// occupancy) must be legal while the stream captures, and the replay must match the reference.
TEST_P(DecodeFastSmall, FirstCallInsideCapture) {
  SFA_SKIP_WITHOUT_KERNELS(kKernel);
  DecodeCase c = make_case(GetParam(), 2, 1, 32, 8, 128, 800);
  c.num_splits = 13;  // a cluster size no other test of this suite uses first
  std::unique_ptr<DecodeRun> run;
  ASSERT_TRUE(DecodeRun::create(c, Device::cuda(0), next_seed(), &run).is_ok());
  const DecodeArgs args = run->args(kKernel);
  cudaStream_t stream;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(args.out.data, 0xff, static_cast<size_t>(args.out.numel()) * 2, stream), cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(args.lse.data, 0xff, static_cast<size_t>(args.lse.numel()) * 4, stream), cudaSuccess);
  size_t workspace_bytes = 0;
  ASSERT_TRUE(decode_workspace_size(args, &workspace_bytes).is_ok());
  void* workspace = nullptr;
  ASSERT_EQ(cudaMalloc(&workspace, workspace_bytes), cudaSuccess);  // before the capture: no allocation inside
  Launch launch;
  launch.stream = stream;
  launch.workspace = workspace;
  launch.workspace_bytes = workspace_bytes;
  cudaGraph_t graph;
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), cudaSuccess);
  const Status captured = decode(args, launch);
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  ASSERT_TRUE(captured.is_ok()) << captured.message();
  cudaGraphExec_t exec;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  const CaseResult r = run->verify();
  EXPECT_TRUE(r.passed()) << r.summary();
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
  cudaFree(workspace);
}

// The split heuristic on a short cache with few items (batch 1, 8 KV heads, kv 1024, on a GPU of
// at least 128 SMs): as many splits as give each of a block's 8 warps one 16-key tile (8), not
// the count for the SMs (6 on 132 SMs), and the result still matches the reference.
TEST_P(DecodeFastSmall, ShortCacheSplitsGiveEachWarpOneTile) {
  SFA_SKIP_WITHOUT_KERNELS(kKernel);
  int sms = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), cudaSuccess);
  if (sms < 128) GTEST_SKIP() << "the few-items rule needs >= 128 SMs for 8 items; this GPU has " << sms;
  DecodeCase c = make_case(GetParam(), 1, 1, 32, 8, 128, 1024);
  std::unique_ptr<DecodeRun> run;
  ASSERT_TRUE(DecodeRun::create(c, Device::cuda(0), next_seed(), &run).is_ok());
  DecodeArgs args = run->args(kKernel);
  size_t auto_bytes = 0, eight_bytes = 0, six_bytes = 0;
  ASSERT_TRUE(decode_workspace_size(args, &auto_bytes).is_ok());
  args.num_splits = 8;
  ASSERT_TRUE(decode_workspace_size(args, &eight_bytes).is_ok());
  args.num_splits = 6;
  ASSERT_TRUE(decode_workspace_size(args, &six_bytes).is_ok());
  EXPECT_NE(eight_bytes, six_bytes);
  EXPECT_EQ(auto_bytes, eight_bytes);
  const Status st = run->run(kKernel);
  ASSERT_TRUE(st.is_ok()) << st.message();
  const CaseResult r = run->verify();
  EXPECT_TRUE(r.passed()) << r.summary();
}

std::string dtype_param_name(const ::testing::TestParamInfo<DType>& info) { return dtype_name(info.param); }

INSTANTIATE_TEST_SUITE_P(Dtypes, DecodeFast, ::testing::Values(DType::kFloat16, DType::kBFloat16),
                         dtype_param_name);
INSTANTIATE_TEST_SUITE_P(Dtypes, DecodeFastSmall, ::testing::Values(DType::kFloat16, DType::kBFloat16),
                         dtype_param_name);

}  // namespace
}  // namespace sfa::testing
