// sfa::testing: case descriptions, results, tolerances, seeds. See testing.h.
#include "testing.h"

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>

#include "harness.h"

namespace sfa::testing {
namespace {

const char* short_dtype(DType d) {
  switch (d) {
    case DType::kFloat32: return "fp32";
    case DType::kFloat16: return "fp16";
    case DType::kBFloat16: return "bf16";
    default: return "int32";
  }
}

std::string options(int64_t window_left, int64_t window_right, float softcap, float scale) {
  std::ostringstream s;
  if (window_left >= 0 || window_right >= 0) s << " window(" << window_left << "," << window_right << ")";
  if (softcap > 0) s << " softcap=" << softcap;
  if (scale != 0) s << " scale=" << scale;
  return s.str();
}

uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

std::string AttentionCase::describe() const {
  std::ostringstream s;
  s << short_dtype(dtype) << " b=" << batch << " sq=" << seqlen_q << " sk=" << seqlen_k << " h=" << heads
    << "/" << heads_kv << " d=" << head_dim << (causal ? " causal" : "")
    << options(window_left, window_right, softcap, softmax_scale) << (varlen ? " varlen" : "")
    << (strided ? " strided" : "") << (with_lse ? "" : " no-lse");
  return s.str();
}

std::string DecodeCase::describe() const {
  std::ostringstream s;
  s << short_dtype(dtype) << " b=" << batch << " sq=" << seqlen_q << " kv=" << kv_len << " h=" << heads
    << "/" << heads_kv << " d=" << head_dim << (ragged ? " ragged" : "");
  if (page_size > 0) s << " page=" << page_size;
  if (num_splits > 0) s << " splits=" << num_splits;
  s << options(window_left, -1, softcap, softmax_scale) << (with_lse ? "" : " no-lse");
  return s.str();
}

bool CaseResult::passed() const {
  // Written as "<=" so that NaN errors fail.
  return status.is_ok() && unwritten == 0 && stray_writes == 0 && out_error <= tolerance &&
         lse_error <= lse_tolerance;
}

std::string CaseResult::summary() const {
  std::ostringstream s;
  s << (passed() ? "PASS " : "FAIL ") << kernel_name(kernel) << " [" << description << "]";
  if (!status.is_ok()) {
    s << " status=" << status_code_name(status.code()) << ": " << status.message();
  } else {
    s << " out_error=" << out_error << " (tol " << tolerance << ") lse_error=" << lse_error << " (tol "
      << lse_tolerance << ") unwritten=" << unwritten;
    if (stray_writes) s << " stray_writes=" << stray_writes;
    if (reference != Kernel::kCpuReference) s << " reference=" << kernel_name(reference);
  }
  s << " seed=" << seed << " (replay: SFA_TEST_SEED=" << seed << ")";
  return s.str();
}

double tolerance(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return 3e-6;
    case DType::kFloat16: return 5e-4;
    case DType::kBFloat16: return 4e-3;
    default: return 0;
  }
}

double lse_tolerance(DType) {
  // lse is accumulated in float32 for every dtype (the inputs are exact in float32), so the
  // bound does not depend on the dtype: a few float32 ulps of log(seqlen) plus summation order.
  return 1e-4;
}

namespace {
// Create, run, verify; a failure before verification still returns a result naming the case.
template <typename Run, typename Case>
CaseResult run_case(const Case& c, Kernel kernel, Device device, uint64_t seed) {
  std::unique_ptr<Run> run;
  CaseResult r = detail::start_result(c, kernel, Kernel::kCpuReference, seed);
  if (!(r.status = Run::create(c, device, seed, &run))) return r;
  if (!(r.status = run->run(kernel))) return r;
  return run->verify();
}
}  // namespace

CaseResult run_attention_case(const AttentionCase& c, Kernel kernel, Device device, uint64_t seed) {
  return run_case<AttentionRun>(c, kernel, device, seed);
}

CaseResult run_decode_case(const DecodeCase& c, Kernel kernel, Device device, uint64_t seed) {
  return run_case<DecodeRun>(c, kernel, device, seed);
}

uint64_t next_seed() {
  static const uint64_t base = [] {
    const char* env = std::getenv("SFA_TEST_SEED");
    if (env != nullptr && *env != '\0') return static_cast<uint64_t>(std::strtoull(env, nullptr, 0));
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }();
  static std::atomic<uint64_t> calls{0};
  const uint64_t n = calls.fetch_add(1);
  // The first seed is the base itself, so SFA_TEST_SEED=<a printed seed> replays that case when
  // it is the first one the process runs.
  return n == 0 ? base : mix(base + n * 0x9e3779b97f4a7c15ull);
}

bool gpu_available() { return built_with_cuda() && cuda_device_count() > 0; }

}  // namespace sfa::testing
