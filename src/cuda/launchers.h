// Every CUDA kernel's launcher. Each kernel folder implements its own; cuda_backend.cu calls the
// ones this build holds (CMake option SFA_CUDA_KERNELS).
#pragma once

#include <cuda_runtime.h>

#include "common/problem.h"
#include "cuda/cuda_backend.h"

namespace sfa::cuda {

Status launch_standard(const AttentionProblem& p, void* workspace, cudaStream_t stream);
Status launch_fa1(const AttentionProblem& p, void* workspace, cudaStream_t stream);
Status launch_fa2(const AttentionProblem& p, cudaStream_t stream);
// wgmma false: the mma.sync tiles also where the sm_90a binary has the wgmma kernel (tests).
Status launch_fa2_mma(const AttentionProblem& p, const DeviceInfo& info, cudaStream_t stream, bool wgmma = true);
Status launch_decode(const DecodeProblem& p, cudaStream_t stream);
Status launch_decode_fast(const DecodeProblem& p, const DeviceInfo& info, cudaStream_t stream);

}  // namespace sfa::cuda
