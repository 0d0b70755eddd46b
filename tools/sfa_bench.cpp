// sfa-bench: run any sfa kernel on any shape, verify it against a reference kernel, time it.
//
//   sfa-bench --kernel cpu-flash --seqlen 4k --heads 8 --head-dim 64 --dtype bf16 --causal
//   sfa-bench --kernel fa2_mma,standard --batch 4 --seqlen 2k --heads 16 -d 128 --reference cpu-flash
//   sfa-bench --mode decode --kernel decode_fast --batch 16 --kv-len 8k --heads 32 --heads-kv 8 -d 128
//   sfa-bench --suite default [--json]
//
// Every kernel goes through the public API (sfa::attention / attention_varlen / decode) via the
// shared test harness, which owns the inputs, poisons the outputs and computes the reference.
#include <unistd.h>

#include <cstdio>
#include <vector>

#include "bench_options.h"
#include "bench_report.h"
#include "bench_runner.h"
#include "bench_suites.h"

namespace {

using sfa::bench::Options;
using sfa::bench::Outcome;
using sfa::bench::Row;

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr double kSingleRunMaxSeconds = 10.0;

void print_list() {
  std::printf("kernels:\n");
  for (const char* name : {"cpu-reference", "cpu-flash", "cpu-decode", "standard", "fa1", "fa2", "decode",
                           "fa2_mma", "decode_fast", "auto"}) {
    sfa::Kernel k;
    (void)sfa::kernel_from_name(name, &k);
    const bool cpu =
        k == sfa::Kernel::kCpuReference || k == sfa::Kernel::kCpuFlash || k == sfa::Kernel::kCpuDecode;
    std::printf("  %-14s %s\n", name, cpu ? "CPU" : k == sfa::Kernel::kAuto ? "best available" : "CUDA");
  }
  std::printf("suites:\n");
  for (const auto& s : sfa::bench::suites()) std::printf("  %-14s %s\n", s.name, s.description);
  std::printf("build: CUDA %s, %d CUDA device(s)\n", sfa::built_with_cuda() ? "on" : "off",
              sfa::cuda_device_count());
}

// The path of this executable, for the suites that run rows in fresh processes.
std::string self_path(const char* argv0) {
  char buffer[4096];
  const ssize_t n = readlink("/proc/self/exe", buffer, sizeof buffer - 1);
  if (n <= 0) return argv0;
  buffer[n] = '\0';
  return buffer;
}

// Rows print as they finish in JSON mode; the table waits for all rows (column widths), with a
// progress line on a terminal.
class Output {
 public:
  Output(bool json, bool with_rss)
      : json_(json), with_rss_(with_rss), progress_(!json && isatty(STDERR_FILENO)) {}
  void add(const Row& row) {
    rows_.push_back(row);
    if (json_) {
      sfa::bench::print_json(row);
    } else if (progress_) {
      std::fprintf(stderr, "\r[%zu] %s %s: %s\033[K", rows_.size(), row.kernel.c_str(),
                   sfa::bench::describe_shape(row.shape).c_str(), sfa::bench::outcome_name(row.outcome));
    }
  }
  int finish(bool unsupported_fails) {
    if (progress_) std::fprintf(stderr, "\r\033[K");
    if (!json_) sfa::bench::print_table(rows_, with_rss_);
    for (const Row& r : rows_) {
      if (r.outcome == Outcome::kFailed || r.outcome == Outcome::kError) return kExitFailed;
      if (r.outcome == Outcome::kUnsupported && unsupported_fails) return kExitFailed;
    }
    return 0;
  }

 private:
  bool json_, with_rss_, progress_;
  std::vector<Row> rows_;
};

}  // namespace

int main(int argc, char** argv) {
  Options options;
  sfa::Status st = sfa::bench::parse_options(argc, argv, &options);
  if (!st) {
    std::fprintf(stderr, "sfa-bench: %s\n(see sfa-bench --help)\n", st.message().c_str());
    return kExitUsage;
  }
  if (options.help) {
    std::printf("%s", sfa::bench::usage().c_str());
    return 0;
  }
  if (options.list) {
    print_list();
    return 0;
  }

  const bool memory_suite = options.suite == "cpu-memory";
  Output output(options.json, options.report_rss || memory_suite);
  auto on_row = [&](const Row& row) { output.add(row); };
  if (memory_suite) {
    st = sfa::bench::run_memory_suite(options, self_path(argv[0]), on_row);
    if (!st) {
      std::fprintf(stderr, "sfa-bench: %s\n", st.message().c_str());
      return kExitFailed;
    }
    return output.finish(false);
  }

  std::vector<sfa::bench::BenchGroup> groups;
  if (!options.suite.empty()) {
    st = sfa::bench::suite_groups(options.suite, options, &groups);
    if (!st) {
      std::fprintf(stderr, "sfa-bench: %s\n", st.message().c_str());
      return st.code() == sfa::StatusCode::kInvalidArgument ? kExitUsage : kExitFailed;
    }
  } else {
    sfa::bench::BenchGroup g;
    g.shape = options.shape;
    g.kernels = options.kernels.empty() ? std::vector<std::string>{"auto"} : options.kernels;
    g.reference = options.reference;
    g.verify = options.verify;
    g.verify_after_timing = options.verify_after_timing;
    g.warmup = options.warmup;
    g.iters = options.iters;
    g.max_seconds = options.max_seconds >= 0 ? options.max_seconds : kSingleRunMaxSeconds;
    g.seed = options.seed;
    g.report_rss = options.report_rss;
    groups.push_back(g);
  }
  sfa::bench::Runner runner;
  for (const auto& g : groups) runner.run_group(g, on_row);
  // A suite skips kernels this build or machine lacks; a kernel named on its own must run.
  return output.finish(options.suite.empty());
}
