// sfa-bench suites. Shapes are chosen so a suite runs in seconds to a minute where it runs:
// the CPU suite on a 2-core machine, the GPU suite on one GPU with the CPU verifying.
#include "bench_suites.h"

#include <algorithm>
#include <cstdio>

namespace sfa::bench {
namespace {

Shape prefill(DType dtype, int batch, int seqlen, int heads, int heads_kv, int head_dim, bool causal) {
  Shape s;
  s.mode = Mode::kPrefill;
  s.dtype = dtype;
  s.batch = batch;
  s.seqlen_q = s.seqlen_k = seqlen;
  s.heads = heads;
  s.heads_kv = heads_kv;
  s.head_dim = head_dim;
  s.causal = causal;
  return s;
}

Shape decode(DType dtype, int batch, int kv_len, int heads, int heads_kv, int head_dim, int page_size) {
  Shape s;
  s.mode = Mode::kDecode;
  s.dtype = dtype;
  s.batch = batch;
  s.seqlen_q = 1;
  s.seqlen_k = kv_len;
  s.heads = heads;
  s.heads_kv = heads_kv;
  s.head_dim = head_dim;
  s.page_size = page_size;
  return s;
}

BenchGroup group(const Shape& shape, std::vector<std::string> kernels, const std::string& reference) {
  BenchGroup g;
  g.shape = shape;
  g.kernels = std::move(kernels);
  g.reference = reference;
  return g;
}

// Timing of the float64 oracle: one cold run (it takes long and has no state to warm).
BenchGroup reference_timing(const Shape& shape) {
  BenchGroup g = group(shape, {"cpu-reference"}, "cpu-reference");
  g.verify = false;
  g.warmup = 0;
  g.iters = 1;
  return g;
}

constexpr double kCpuSuiteSecondsPerRow = 2.0;

// The CPU backend at shapes that take seconds on two cores: the tiled FA-2 and the split-KV
// decode beside the float64 reference they are verified against.
std::vector<BenchGroup> cpu_suite() {
  constexpr DType f32 = DType::kFloat32, f16 = DType::kFloat16, bf16 = DType::kBFloat16;
  std::vector<BenchGroup> groups;
  const Shape square = prefill(f32, 1, 1024, 4, 4, 64, false);
  groups.push_back(group(square, {"cpu-flash"}, "cpu-reference"));
  groups.push_back(reference_timing(square));
  groups.push_back(group(prefill(bf16, 1, 1024, 4, 4, 64, true), {"cpu-flash"}, "cpu-reference"));
  groups.push_back(group(prefill(f16, 2, 512, 8, 2, 128, true), {"cpu-flash"}, "cpu-reference"));
  // MQA, head_dim 96 and a softcap. (No sliding window here: the FLOP count assumes full rows.)
  Shape capped = prefill(bf16, 1, 2048, 8, 1, 96, true);
  capped.softcap = 30.0f;
  groups.push_back(group(capped, {"cpu-flash"}, "cpu-reference"));
  groups.push_back(group(prefill(f32, 1, 4096, 4, 4, 64, true), {"cpu-flash"}, "cpu-reference"));
  Shape varlen = prefill(f16, 4, 512, 4, 4, 64, true);
  varlen.mode = Mode::kVarlen;
  groups.push_back(group(varlen, {"cpu-flash"}, "cpu-reference"));
  const Shape contiguous = decode(f16, 4, 4096, 8, 2, 128, 0);
  groups.push_back(group(contiguous, {"cpu-decode"}, "cpu-reference"));
  groups.push_back(reference_timing(contiguous));
  Shape paged = decode(bf16, 4, 4096, 8, 2, 128, 16);
  paged.ragged = true;
  groups.push_back(group(paged, {"cpu-decode"}, "cpu-reference"));
  for (BenchGroup& g : groups) g.max_seconds = kCpuSuiteSecondsPerRow;
  return groups;
}

// The CUDA kernels beside standard attention (GEMM, softmax, GEMM). Prefill rows are verified
// against cpu-flash (float32 accumulation, multithreaded), because the float64 oracle would take
// minutes at these sizes; decode rows against the oracle.
std::vector<BenchGroup> gpu_suite() {
  constexpr DType f32 = DType::kFloat32, f16 = DType::kFloat16, bf16 = DType::kBFloat16;
  const std::vector<std::string> simt = {"standard", "fa1", "fa2"};
  const std::vector<std::string> fast = {"standard", "fa2_mma", "fa2"};
  std::vector<BenchGroup> groups;
  groups.push_back(group(prefill(f32, 16, 1024, 12, 12, 64, false), simt, "cpu-flash"));
  groups.push_back(group(prefill(bf16, 4, 1024, 16, 16, 128, false), fast, "cpu-flash"));
  groups.push_back(group(prefill(bf16, 4, 1024, 16, 16, 128, true), fast, "cpu-flash"));
  groups.push_back(group(prefill(f16, 1, 4096, 32, 32, 64, true), fast, "cpu-flash"));
  groups.push_back(group(decode(bf16, 16, 8192, 32, 8, 128, 0), {"decode_fast", "decode"}, "cpu-reference"));
  groups.push_back(group(decode(bf16, 16, 8192, 32, 8, 128, 16), {"decode_fast", "decode"}, "cpu-reference"));
  groups.push_back(group(decode(f32, 8, 16384, 32, 32, 128, 0), {"decode"}, "cpu-reference"));
  return groups;
}

// Applies the command line's overrides to a suite's groups.
void apply_overrides(const Options& o, std::vector<BenchGroup>* groups) {
  std::vector<BenchGroup> kept;
  for (BenchGroup g : *groups) {
    if (!o.kernels.empty()) {
      std::vector<std::string> only;
      for (const std::string& k : g.kernels) {
        if (std::find(o.kernels.begin(), o.kernels.end(), k) != o.kernels.end()) only.push_back(k);
      }
      if (only.empty()) continue;
      g.kernels = only;
    }
    if (o.warmup >= 0) g.warmup = o.warmup;
    if (o.iters > 0) g.iters = o.iters;
    if (o.max_seconds >= 0) g.max_seconds = o.max_seconds;
    if (o.seed != 0) g.seed = o.seed;
    if (!o.verify) g.verify = false;
    if (o.reference != "cpu-reference") g.reference = o.reference;
    g.report_rss = o.report_rss;
    kept.push_back(g);
  }
  *groups = kept;
}

}  // namespace

const std::vector<SuiteInfo>& suites() {
  static const std::vector<SuiteInfo> kSuites = {
      {"default", "the GPU suite when a CUDA device is present, else the CPU suite (make demo)"},
      {"cpu", "cpu-flash and cpu-decode beside cpu-reference at shapes that run in seconds"},
      {"gpu", "the CUDA kernels beside standard attention at representative shapes"},
      {"cpu-memory",
       "cpu-flash vs cpu-reference at seqlen 1k, 4k, 16k: time and peak memory, one process each"},
  };
  return kSuites;
}

Status suite_groups(const std::string& name, const Options& options, std::vector<BenchGroup>* groups) {
  std::string which = name;
  if (which == "default") which = cuda_device_count() > 0 ? "gpu" : "cpu";
  if (which == "cpu") {
    *groups = cpu_suite();
  } else if (which == "gpu") {
    if (cuda_device_count() == 0) {
      return Status(
          StatusCode::kUnsupported,
          std::string("--suite gpu: ") + (built_with_cuda() ? "no CUDA device" : "built without CUDA"));
    }
    *groups = gpu_suite();
  } else {
    std::string known;
    for (const SuiteInfo& s : suites()) known += (known.empty() ? "" : ", ") + std::string(s.name);
    return Status(StatusCode::kInvalidArgument, "--suite: expected one of " + known + "; got '" + name + "'");
  }
  apply_overrides(options, groups);
  return Status::ok();
}

}  // namespace sfa::bench
