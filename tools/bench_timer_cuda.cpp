// sfa-bench: the CUDA timer. Each timed run is bracketed by a pair of events on the tool's own
// stream; for decode an untimed write of twice the L2 size precedes each run so the KV cache is
// read from HBM, as it is in a real decode step.
#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <vector>

#include "bench_timer.h"

namespace sfa::bench {
namespace {

// Runs between host synchronisations: enough to keep the GPU busy, few enough to check the
// time budget often.
constexpr int kRunsPerBatch = 10;
constexpr int kL2FlushFactor = 2;

Status cuda_status(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Status::ok();
  return Status(StatusCode::kCudaError, std::string(what) + ": " + cudaGetErrorString(err));
}

class CudaTimer final : public Timer {
 public:
  explicit CudaTimer(int device) : device_(device) {}
  ~CudaTimer() override {
    for (cudaEvent_t e : events_) cudaEventDestroy(e);
    if (flush_buffer_ != nullptr) cudaFree(flush_buffer_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  Status init() {
    Status st = cuda_status(cudaSetDevice(device_), "cudaSetDevice");
    if (!st) return st;
    // A blocking stream: it orders with the legacy default stream, which the harness uploads
    // inputs and runs GPU references on.
    st = cuda_status(cudaStreamCreate(&stream_), "cudaStreamCreate");
    if (!st) return st;
    events_.resize(2 * kRunsPerBatch, nullptr);
    for (cudaEvent_t& e : events_) {
      if (!(st = cuda_status(cudaEventCreate(&e), "cudaEventCreate"))) return st;
    }
    return Status::ok();
  }

  void* stream() const override { return stream_; }
  Status synchronize() override {
    return cuda_status(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  }
  int default_warmup() const override { return 10; }
  int default_iters() const override { return 100; }

  Status time(const std::function<Status()>& launch, const TimingPlan& plan, Timing* timing) override {
    Status st;
    if (plan.flush_l2 && !(st = ensure_flush_buffer())) return st;
    for (int i = 0; i < plan.warmup; ++i) {
      if (!(st = launch())) return st;
    }
    if (!(st = synchronize())) return st;
    std::vector<double> times;
    double total_ms = 0;
    while (static_cast<int>(times.size()) < plan.iters &&
           (times.empty() || total_ms < plan.max_seconds * 1e3)) {
      const int runs = std::min(kRunsPerBatch, plan.iters - static_cast<int>(times.size()));
      for (int r = 0; r < runs; ++r) {
        if (plan.flush_l2) {
          st = cuda_status(cudaMemsetAsync(flush_buffer_, r & 0xff, flush_bytes_, stream_), "L2 flush");
          if (!st) return st;
        }
        cudaEventRecord(events_[2 * r], stream_);
        if (!(st = launch())) return st;
        cudaEventRecord(events_[2 * r + 1], stream_);
      }
      if (!(st = synchronize())) return st;
      for (int r = 0; r < runs; ++r) {
        float ms = 0;
        st = cuda_status(cudaEventElapsedTime(&ms, events_[2 * r], events_[2 * r + 1]),
                         "cudaEventElapsedTime");
        if (!st) return st;
        times.push_back(ms);
        total_ms += ms;
      }
    }
    timing->median_ms = median(times);
    timing->min_ms = *std::min_element(times.begin(), times.end());
    timing->runs = static_cast<int>(times.size());
    return Status::ok();
  }

 private:
  Status ensure_flush_buffer() {
    if (flush_buffer_ != nullptr) return Status::ok();
    int l2_bytes = 0;
    Status st = cuda_status(cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, device_), "L2 size");
    if (!st) return st;
    flush_bytes_ = static_cast<size_t>(kL2FlushFactor) * static_cast<size_t>(l2_bytes);
    return cuda_status(cudaMalloc(&flush_buffer_, flush_bytes_), "cudaMalloc (L2 flush buffer)");
  }

  int device_;
  cudaStream_t stream_ = nullptr;
  std::vector<cudaEvent_t> events_;
  void* flush_buffer_ = nullptr;
  size_t flush_bytes_ = 0;
};

}  // namespace

Status make_cuda_timer(int device, std::unique_ptr<Timer>* timer) {
  auto cuda_timer = std::make_unique<CudaTimer>(device);
  Status st = cuda_timer->init();
  if (!st) return st;
  *timer = std::move(cuda_timer);
  return Status::ok();
}

}  // namespace sfa::bench
