// sfa-bench suites: named lists of groups (shapes x kernels) that run together.
#pragma once

#include <string>
#include <vector>

#include "bench_options.h"
#include "bench_report.h"
#include "bench_runner.h"

namespace sfa::bench {

struct SuiteInfo {
  const char* name;
  const char* description;
};
const std::vector<SuiteInfo>& suites();

// The groups of a suite ("default", "cpu", "gpu"). Timing options given on the command line
// (--warmup, --iters, --max-seconds, --seed, --reference, --no-verify) override the suite's;
// --kernel keeps only the named kernels.
Status suite_groups(const std::string& name, const Options& options, std::vector<BenchGroup>* groups);

// The cpu-memory suite: cpu-flash against cpu-reference at seqlen 1k, 4k and 16k, each row
// measured in a fresh process (this executable, `self`) so its peak resident memory is its own.
Status run_memory_suite(const Options& options, const std::string& self,
                        const std::function<void(const Row&)>& on_row);

}  // namespace sfa::bench
