// sfa::testing — the shared test harness: case tables, inputs, poisoned outputs, the float64
// oracle and the error measures every backend's tests (and sfa-bench) use.
//
// A run owns its inputs on the host (and, for CUDA, on the device), random from a seed, and
// fresh output buffers that are filled with NaN before every run(). verify() compares against a
// reference kernel (the CPU float64 reference by default) run on float32 copies of the same
// inputs, which hold the half-precision values exactly, so the oracle is not rounded to the
// dtype under test.
//
// Seeds: next_seed() derives a fresh seed per call from SFA_TEST_SEED when set (its first call
// returns SFA_TEST_SEED itself), else from std::random_device. summary() prints the seed; to
// replay a failing case run only that test with SFA_TEST_SEED set to it.
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "sfa/sfa.h"

namespace sfa {
// GoogleTest prints enum parameters through these (instead of a byte dump); ADL finds them here.
inline void PrintTo(DType d, std::ostream* os) { *os << dtype_name(d); }
inline void PrintTo(Kernel k, std::ostream* os) { *os << kernel_name(k); }
}  // namespace sfa

namespace sfa::testing {

struct AttentionCase {
  DType dtype = DType::kFloat16;
  int batch = 1, seqlen_q = 1, seqlen_k = 1, heads = 1, heads_kv = 1, head_dim = 64;
  bool causal = false;
  int64_t window_left = -1, window_right = -1;
  float softcap = 0, softmax_scale = 0;
  // Packed batches: per-sequence lengths drawn in [0, seqlen_q] / [0, seqlen_k], one sequence at
  // the maximum, one zero-length query sequence and one zero-length key sequence (batch > 1),
  // and a few packed rows that belong to no sequence.
  bool varlen = false;
  // q/k/v/out are non-contiguous views: a [batch, heads, seqlen, head_dim + pad] buffer seen as
  // [batch, seqlen, heads, head_dim].
  bool strided = false;
  bool with_lse = true;
  std::string describe() const;
};

struct DecodeCase {
  DType dtype = DType::kFloat16;
  int batch = 1, seqlen_q = 1, heads = 8, heads_kv = 8, head_dim = 128;
  int kv_len = 1;       // capacity and longest length
  bool ragged = false;  // lengths differ per sequence, incl. 0 and kv_len (batch > 1)
  int page_size = 0;    // 0: contiguous cache; else paged, pages assigned in shuffled order
  int num_splits = 0;   // 0: the library's heuristic
  int64_t window_left = -1;
  float softcap = 0, softmax_scale = 0;
  bool with_lse = true;
  std::string describe() const;
};

// A case with the given shape and every other field at its default.
AttentionCase attention_case(DType dtype, int batch, int seqlen_q, int seqlen_k, int heads, int heads_kv,
                             int head_dim);
DecodeCase decode_case(DType dtype, int batch, int seqlen_q, int heads, int heads_kv, int head_dim, int kv_len);

// GoogleTest prints parameters through these (instead of a byte dump).
inline void PrintTo(const AttentionCase& c, std::ostream* os) { *os << c.describe(); }
inline void PrintTo(const DecodeCase& c, std::ostream* os) { *os << c.describe(); }

struct CaseResult {
  Status status;
  double out_error = 0;       // ||out - ref||_2 / ||ref||_2 over written rows (absolute if ||ref|| = 0)
  double lse_error = 0;       // max |lse - ref| over rows with a finite reference (inf on a -inf mismatch)
  int64_t unwritten = 0;      // output elements (out and lse) still NaN after the run
  int64_t stray_writes = 0;   // elements written outside the output view (padding of strided out)
  double tolerance = 0;       // bound on out_error for the dtype
  double lse_tolerance = 0;   // bound on lse_error
  uint64_t seed = 0;
  std::string description;    // the case, for messages
  Kernel kernel = Kernel::kAuto;
  Kernel reference = Kernel::kCpuReference;

  bool passed() const;
  std::string summary() const;
};

// out_error bound: 3e-6 float32, 5e-4 float16, 4e-3 bfloat16 (DESIGN.md).
double tolerance(DType dtype);
// lse_error bound (lse is float32 for every dtype; only the accumulation order differs).
double lse_tolerance(DType dtype);

// One attention problem: inputs, poisoned outputs, cached references.
class AttentionRun {
 public:
  static Status create(const AttentionCase& c, Device device, uint64_t seed,
                       std::unique_ptr<AttentionRun>* run);
  ~AttentionRun();

  // Fills out and lse with NaN, then calls sfa (attention() or attention_varlen()).
  Status run(Kernel kernel, void* stream = nullptr);
  // Only the NaN fill, for a launch of `kernel` made outside sfa's entry points (a launcher
  // called directly); verify() labels its result with `kernel`.
  Status poison(Kernel kernel, void* stream = nullptr);
  // Just the sfa call, with a workspace sized and kept for the kernel (for timing loops).
  Status launch(Kernel kernel, void* stream = nullptr);
  // Waits for the device, copies the outputs back and compares them with `reference` (run once
  // on float32 copies of the inputs and cached). The reference may be a CUDA kernel when the run
  // is on CUDA.
  CaseResult verify(Kernel reference = Kernel::kCpuReference);
  // 4 * batch * heads * seqlen_q * seqlen_k * head_dim, halved for causal with seqlen_q ==
  // seqlen_k; varlen sums the actual sequences.
  double flops() const;
  // The arguments run() passes for `kernel` (tensors on the run's device).
  AttentionArgs args(Kernel kernel) const;

  const AttentionCase& test_case() const;
  Device device() const;
  uint64_t seed() const;
  // Varlen: the drawn per-sequence lengths (dense: every entry is seqlen_q / seqlen_k).
  const std::vector<int32_t>& lengths_q() const;
  const std::vector<int32_t>& lengths_k() const;

  struct Impl;

 private:
  explicit AttentionRun(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One decode problem: q, a contiguous or paged KV cache, cache_seqlens, poisoned outputs.
class DecodeRun {
 public:
  static Status create(const DecodeCase& c, Device device, uint64_t seed,
                       std::unique_ptr<DecodeRun>* run);
  ~DecodeRun();

  Status run(Kernel kernel, void* stream = nullptr);
  Status launch(Kernel kernel, void* stream = nullptr);
  CaseResult verify(Kernel reference = Kernel::kCpuReference);
  // 4 * heads * head_dim * sum_b seqlen_q * cache_seqlens[b].
  double flops() const;
  // Bytes of K and V read: sum_b cache_seqlens[b] * heads_kv * head_dim * 2 * element size.
  double bytes() const;
  DecodeArgs args(Kernel kernel) const;

  const DecodeCase& test_case() const;
  Device device() const;
  uint64_t seed() const;
  const std::vector<int32_t>& cache_seqlens() const;

  struct Impl;

 private:
  explicit DecodeRun(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// create + run + verify against the CPU reference; a failure to create or run is in .status.
CaseResult run_attention_case(const AttentionCase& c, Kernel kernel, Device device, uint64_t seed);
CaseResult run_decode_case(const DecodeCase& c, Kernel kernel, Device device, uint64_t seed);

// The DESIGN.md case tables. `small` keeps every case cheap for the float64 reference (well under
// a second on one core); the full tables add the long sequences and large head dims.
std::vector<AttentionCase> attention_case_table(DType dtype, bool small);
std::vector<DecodeCase> decode_case_table(DType dtype, bool small);

uint64_t next_seed();
// A CUDA build with at least one device.
bool gpu_available();

}  // namespace sfa::testing

// First statement of every GPU test: skips visibly where no GPU is present.
#define SFA_SKIP_WITHOUT_GPU()                                          \
  do {                                                                  \
    if (!::sfa::testing::gpu_available()) {                             \
      GTEST_SKIP() << "no CUDA device: GPU test skipped";               \
    }                                                                   \
  } while (0)

// The same, and also where a kernel the test runs is not in this build (a development build may
// hold a subset of the CUDA kernels: SFA_CUDA_KERNELS).
#define SFA_SKIP_WITHOUT_KERNELS(...)                                                          \
  do {                                                                                         \
    SFA_SKIP_WITHOUT_GPU();                                                                    \
    for (const ::sfa::Kernel kernel_ : {__VA_ARGS__}) {                                        \
      if (!::sfa::kernel_built(kernel_)) {                                                     \
        GTEST_SKIP() << "kernel '" << ::sfa::kernel_name(kernel_) << "' not in this build: GPU test skipped"; \
      }                                                                                        \
    }                                                                                          \
  } while (0)
