// sfa-bench timing: CPU kernels with the steady clock, CUDA kernels with events on a stream.
// Both run untimed warm-up calls first and report the median of the timed runs.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "sfa/sfa.h"

namespace sfa::bench {

struct TimingPlan {
  int warmup = 1;
  int iters = 5;
  double max_seconds = 10.0;  // stop early once the timed runs add up to this
  bool flush_l2 = false;      // CUDA: overwrite a scratch buffer of twice the L2 size before each run
};

struct Timing {
  double median_ms = -1;
  double min_ms = -1;
  int runs = 0;
  // CPU: median process CPU time (all threads) per run. On a shared machine the wall time grows
  // with the other load, this much less.
  double cpu_ms = -1;
};

class Timer {
 public:
  virtual ~Timer() = default;
  // The stream kernels are queued on (cudaStream_t), nullptr on the CPU.
  virtual void* stream() const = 0;
  // Waits for the stream (no-op on the CPU).
  virtual Status synchronize() = 0;
  virtual Status time(const std::function<Status()>& launch, const TimingPlan& plan, Timing* timing) = 0;
  // Defaults for --warmup / --iters on this device.
  virtual int default_warmup() const = 0;
  virtual int default_iters() const = 0;
};

// A timer for the device; kUnsupported for a CUDA device in a build without CUDA.
Status make_timer(Device device, std::unique_ptr<Timer>* timer);

// The median of a non-empty list of times.
double median(std::vector<double> values);

}  // namespace sfa::bench
