// The CUDA backend behind src/api: device queries and the switch from Kernel to launcher.
#include <mutex>
#include <vector>

#include "cuda/common/check.cuh"
#include "cuda/cuda_backend.h"
#include "cuda/launchers.h"

namespace sfa::cuda {
namespace {

// Runs the enclosing call on `device` and restores the caller's current device afterwards.
class DeviceGuard {
 public:
  Status enter(int device) {
    SFA_CUDA_TRY(cudaGetDevice(&previous_));
    if (previous_ != device) {
      SFA_CUDA_TRY(cudaSetDevice(device));
      switched_ = true;
    }
    return Status::ok();
  }
  ~DeviceGuard() {
    if (switched_) cudaSetDevice(previous_);
  }

 private:
  int previous_ = 0;
  bool switched_ = false;
};

}  // namespace

bool built() { return true; }

int device_count() {
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();  // clear the sticky "no device" error
      n = 0;
    }
    return n;
  }();
  return count;
}

bool has_kernel(Kernel kernel) {
  switch (kernel) {
#ifdef SFA_WITH_STANDARD
    case Kernel::kStandard: return true;
#endif
#ifdef SFA_WITH_FA1
    case Kernel::kFa1: return true;
#endif
#ifdef SFA_WITH_FA2
    case Kernel::kFa2: return true;
#endif
#ifdef SFA_WITH_FA2_MMA
    case Kernel::kFa2Mma: return true;
#endif
#ifdef SFA_WITH_DECODE
    case Kernel::kDecode: return true;
#endif
#ifdef SFA_WITH_DECODE_FAST
    case Kernel::kDecodeFast: return true;
#endif
    default: return false;
  }
}

Status device_info(int index, DeviceInfo* info) {
  static std::mutex mutex;
  static std::vector<DeviceInfo> cache;
  static std::vector<bool> known;
  const int count = device_count();
  if (index < 0 || index >= count) {
    return Status(StatusCode::kInvalidArgument, "device: no CUDA device " + std::to_string(index));
  }
  std::lock_guard<std::mutex> lock(mutex);
  if (cache.empty()) {
    cache.resize(count);
    known.assign(count, false);
  }
  if (!known[index]) {
    DeviceInfo d;
    int value = 0;
    SFA_CUDA_TRY(cudaDeviceGetAttribute(&d.sm_count, cudaDevAttrMultiProcessorCount, index));
    SFA_CUDA_TRY(cudaDeviceGetAttribute(&d.cc_major, cudaDevAttrComputeCapabilityMajor, index));
    SFA_CUDA_TRY(cudaDeviceGetAttribute(&d.cc_minor, cudaDevAttrComputeCapabilityMinor, index));
    SFA_CUDA_TRY(cudaDeviceGetAttribute(&value, cudaDevAttrMaxSharedMemoryPerBlockOptin, index));
    d.smem_per_block_optin = static_cast<size_t>(value);
    cache[index] = d;
    known[index] = true;
  }
  *info = cache[index];
  return Status::ok();
}

Status run_attention(Kernel kernel, [[maybe_unused]] const AttentionProblem& p, int device,
                     const Launch& launch) {
  DeviceGuard guard;
  SFA_RETURN_IF_ERROR(guard.enter(device));
  [[maybe_unused]] auto stream = static_cast<cudaStream_t>(launch.stream);
  switch (kernel) {
#ifdef SFA_WITH_STANDARD
    case Kernel::kStandard: return launch_standard(p, launch.workspace, stream);
#endif
#ifdef SFA_WITH_FA1
    case Kernel::kFa1: return launch_fa1(p, launch.workspace, stream);
#endif
#ifdef SFA_WITH_FA2
    case Kernel::kFa2: return launch_fa2(p, stream);
#endif
#ifdef SFA_WITH_FA2_MMA
    case Kernel::kFa2Mma: {
      DeviceInfo info;
      SFA_RETURN_IF_ERROR(device_info(device, &info));
      return launch_fa2_mma(p, info, stream);
    }
#endif
    default:
      return Status(StatusCode::kInternal, std::string("no CUDA attention launcher for kernel '") +
                                               kernel_name(kernel) + "'");
  }
}

Status run_decode(Kernel kernel, [[maybe_unused]] const DecodeProblem& p, int device,
                  const Launch& launch) {
  DeviceGuard guard;
  SFA_RETURN_IF_ERROR(guard.enter(device));
  [[maybe_unused]] auto stream = static_cast<cudaStream_t>(launch.stream);
  switch (kernel) {
#ifdef SFA_WITH_DECODE
    case Kernel::kDecode: return launch_decode(p, stream);
#endif
#ifdef SFA_WITH_DECODE_FAST
    case Kernel::kDecodeFast: {
      DeviceInfo info;
      SFA_RETURN_IF_ERROR(device_info(device, &info));
      return launch_decode_fast(p, info, stream);
    }
#endif
    default:
      return Status(StatusCode::kInternal, std::string("no CUDA decode launcher for kernel '") +
                                               kernel_name(kernel) + "'");
  }
}

#ifndef SFA_WITH_STANDARD
size_t standard_workspace_size(const AttentionProblem&) { return 0; }
#endif
#ifndef SFA_WITH_FA1
size_t fa1_workspace_size(const AttentionProblem&) { return 0; }
#endif

}  // namespace sfa::cuda
