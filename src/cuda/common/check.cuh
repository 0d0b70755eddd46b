// Error checking for CUDA calls and launches: every failure becomes a Status naming the call.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "sfa/tensor.h"

namespace sfa::cuda {

inline Status cuda_status(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Status::ok();
  return Status(StatusCode::kCudaError,
                std::string(what) + ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}

// After a <<<...>>> launch: launch-configuration errors show up here (asynchronous faults show up
// at the caller's next synchronisation, as with any CUDA library).
inline Status check_launch(const char* kernel) {
  return cuda_status(cudaGetLastError(), kernel);
}

}  // namespace sfa::cuda

// Return the Status of a failing CUDA runtime call from the enclosing function.
#define SFA_CUDA_TRY(call)                                                   \
  do {                                                                       \
    ::sfa::Status sfa_status_ = ::sfa::cuda::cuda_status((call), #call);     \
    if (!sfa_status_.is_ok()) return sfa_status_;                            \
  } while (0)

// Return a failing Status from the enclosing function.
#define SFA_RETURN_IF_ERROR(expr)              \
  do {                                         \
    ::sfa::Status sfa_status_ = (expr);        \
    if (!sfa_status_.is_ok()) return sfa_status_; \
  } while (0)
