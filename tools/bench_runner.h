// sfa-bench: runs one group of rows — several kernels on one shape, sharing the inputs and the
// cached reference — verifying each kernel and timing it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench_options.h"
#include "bench_report.h"
#include "bench_timer.h"

namespace sfa::bench {

struct BenchGroup {
  Shape shape;
  std::vector<std::string> kernels;
  std::string reference = "cpu-reference";
  bool verify = true;
  bool verify_after_timing = false;
  int warmup = -1;  // -1: the timer's default
  int iters = -1;
  double max_seconds = 10.0;
  uint64_t seed = 0;  // 0: a fresh seed
  bool report_rss = false;
};

// Keeps one timer (stream, events, L2 flush buffer) per device across groups.
class Runner {
 public:
  // Runs every kernel of the group; `on_row` sees each row as soon as it is done.
  void run_group(const BenchGroup& group, const std::function<void(const Row&)>& on_row);

 private:
  Status timer_for(Device device, Timer** timer);
  std::map<int, std::unique_ptr<Timer>> timers_;  // key: -1 for the CPU, else the CUDA ordinal
};

// The device a kernel runs on: CPU kernels on the CPU, CUDA kernels on GPU 0; "auto" on GPU 0
// when one is present.
Device device_for(Kernel kernel);

// Peak resident memory of this process so far, in KiB (-1 where unknown).
int64_t peak_rss_kb();

}  // namespace sfa::bench
