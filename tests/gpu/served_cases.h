// Shared by the GPU test files: run a table of cases through one kernel on GPU 0 and check each
// against a reference (the CPU float64 oracle unless told otherwise).
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <type_traits>
#include <vector>

#include "testing.h"

namespace sfa::testing {

// Whether `kernel` serves the run's arguments, by the library's own selection (fa2_mma has no
// float32, standard no varlen, decode_fast at most 8 new tokens...).
inline bool serves(Kernel kernel, const AttentionRun& run) {
  Kernel chosen;
  return select_kernel(run.args(kernel), run.test_case().varlen, &chosen).is_ok();
}
inline bool serves(Kernel kernel, const DecodeRun& run) {
  Kernel chosen;
  return select_kernel(run.args(kernel), &chosen).is_ok();
}

// Runs every case `kernel` serves (poisoned outputs, then verify against `reference`); returns how
// many ran, so a test can assert that its table was not skipped wholesale.
template <typename Case>
int run_served_cases(Kernel kernel, const std::vector<Case>& cases, Kernel reference = Kernel::kCpuReference) {
  using Run = std::conditional_t<std::is_same_v<Case, AttentionCase>, AttentionRun, DecodeRun>;
  int ran = 0;
  for (const Case& c : cases) {
    std::unique_ptr<Run> run;
    Status st = Run::create(c, Device::cuda(0), next_seed(), &run);
    EXPECT_TRUE(st.is_ok()) << c.describe() << ": " << st.message();
    if (!st || !serves(kernel, *run)) continue;
    st = run->run(kernel);
    EXPECT_TRUE(st.is_ok()) << kernel_name(kernel) << " [" << c.describe() << "]: " << st.message();
    if (!st) continue;
    const CaseResult r = run->verify(reference);
    EXPECT_TRUE(r.passed()) << r.summary();
    ++ran;
  }
  return ran;
}

}  // namespace sfa::testing
