// sfa-bench: the CPU timer, and the choice between it and the CUDA timer.
#include "bench_timer.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <vector>

namespace sfa::bench {

#ifdef SFA_WITH_CUDA
Status make_cuda_timer(int device, std::unique_ptr<Timer>* timer);  // bench_timer_cuda.cpp
#endif

namespace {

// CPU time of the whole process (every thread) in milliseconds.
double process_cpu_ms() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

// CPU kernels run to completion inside the call, so the host clock around it is the kernel time.
class CpuTimer final : public Timer {
 public:
  void* stream() const override { return nullptr; }
  Status synchronize() override { return Status::ok(); }
  int default_warmup() const override { return 1; }
  int default_iters() const override { return 5; }

  Status time(const std::function<Status()>& launch, const TimingPlan& plan, Timing* timing) override {
    using Clock = std::chrono::steady_clock;
    for (int i = 0; i < plan.warmup; ++i) {
      Status st = launch();
      if (!st) return st;
    }
    std::vector<double> times, cpu_times;
    double total_ms = 0;
    for (int i = 0; i < plan.iters && (i == 0 || total_ms < plan.max_seconds * 1e3); ++i) {
      const double cpu_start = process_cpu_ms();
      const auto start = Clock::now();
      Status st = launch();
      const auto stop = Clock::now();
      if (!st) return st;
      cpu_times.push_back(process_cpu_ms() - cpu_start);
      times.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
      total_ms += times.back();
    }
    timing->median_ms = median(times);
    timing->cpu_ms = median(cpu_times);
    timing->min_ms = *std::min_element(times.begin(), times.end());
    timing->runs = static_cast<int>(times.size());
    return Status::ok();
  }
};

}  // namespace

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

Status make_timer(Device device, std::unique_ptr<Timer>* timer) {
  if (device.type == DeviceType::kCPU) {
    *timer = std::make_unique<CpuTimer>();
    return Status::ok();
  }
#ifdef SFA_WITH_CUDA
  return make_cuda_timer(device.index, timer);
#else
  return Status(StatusCode::kUnsupported, "sfa-bench was built without CUDA");
#endif
}

}  // namespace sfa::bench
