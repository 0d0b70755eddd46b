// sfa-bench --suite cpu-memory: time and peak resident memory of cpu-flash and cpu-reference at
// long sequences. Each row runs in a fresh process (this executable again, with --report-rss), so
// the peak it reports belongs to that one kernel: the child records its peak after making the
// inputs (baseline) and after timing the kernel, then verifies (the reference's own memory comes
// after both readings).
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "bench_suites.h"
#include "common/testing.h"

namespace sfa::bench {
namespace {

// batch 1, 4 heads of 64, float32: large enough that a seqlen^2 score matrix would dominate
// (16k^2 float32 is 1 GiB per head), small enough that the float64 reference finishes.
constexpr int kSeqlens[] = {1024, 4096, 16384};
constexpr int kHeads = 4;
constexpr int kHeadDim = 64;
// Above this length the reference is timed once, cold.
constexpr int kLongSeqlen = 4096;

std::vector<std::string> child_arguments(const std::string& self, const std::string& kernel, int seqlen,
                                         const Options& o, uint64_t seed) {
  const bool is_reference = kernel == "cpu-reference";
  const bool long_run = is_reference && seqlen > kLongSeqlen;
  std::vector<std::string> args = {self,
                                   "--kernel",
                                   kernel,
                                   "--mode",
                                   "prefill",
                                   "--dtype",
                                   "float32",
                                   "--batch",
                                   "1",
                                   "--seqlen",
                                   std::to_string(seqlen),
                                   "--heads",
                                   std::to_string(kHeads),
                                   "--head-dim",
                                   std::to_string(kHeadDim),
                                   "--json",
                                   "--report-rss",
                                   "--seed",
                                   std::to_string(seed)};
  if (is_reference || !o.verify) {
    args.push_back("--no-verify");
  } else {
    args.insert(args.end(), {"--verify-after-timing", "--reference", o.reference});
  }
  const int warmup = o.warmup >= 0 ? o.warmup : (is_reference ? 0 : 1);
  const int iters = o.iters > 0 ? o.iters : (long_run ? 1 : 3);
  args.insert(args.end(), {"--warmup", std::to_string(warmup), "--iters", std::to_string(iters)});
  if (o.max_seconds >= 0) args.insert(args.end(), {"--max-seconds", std::to_string(o.max_seconds)});
  return args;
}

// Runs the child, returns its stdout and exit status.
Status run_child(const std::vector<std::string>& args, std::string* output) {
  int fds[2];
  if (pipe(fds) != 0) return Status(StatusCode::kInternal, std::string("pipe: ") + std::strerror(errno));
  const pid_t pid = fork();
  if (pid < 0) return Status(StatusCode::kInternal, std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  char buffer[4096];
  ssize_t n;
  while ((n = read(fds[0], buffer, sizeof buffer)) > 0) output->append(buffer, static_cast<size_t>(n));
  close(fds[0]);
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 127) {
    return Status(StatusCode::kInternal, "could not run " + args[0]);
  }
  return Status::ok();
}

}  // namespace

Status run_memory_suite(const Options& o, const std::string& self,
                        const std::function<void(const Row&)>& on_row) {
  for (int seqlen : kSeqlens) {
    const uint64_t seed = o.seed != 0 ? o.seed : testing::next_seed();
    for (const char* kernel : {"cpu-flash", "cpu-reference"}) {
      if (!o.kernels.empty() && std::find(o.kernels.begin(), o.kernels.end(), kernel) == o.kernels.end())
        continue;
      Row row;
      row.kernel = kernel;
      row.shape = Shape();
      row.shape.dtype = DType::kFloat32;
      row.shape.seqlen_q = row.shape.seqlen_k = seqlen;
      row.shape.heads = row.shape.heads_kv = kHeads;
      row.shape.head_dim = kHeadDim;
      std::string output;
      Status st = run_child(child_arguments(self, kernel, seqlen, o, seed), &output);
      const size_t start = output.find('{');
      if (!st) {
        row.outcome = Outcome::kError;
        row.message = st.message();
      } else if (start == std::string::npos || !from_json(output.substr(start), &row)) {
        row.outcome = Outcome::kError;
        row.message = "no result from the child process";
      }
      on_row(row);
    }
  }
  return Status::ok();
}

}  // namespace sfa::bench
