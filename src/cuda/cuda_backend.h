// The CUDA backend as the API layer sees it: plain C++ (no CUDA headers), so src/api builds
// without nvcc. Implemented in src/cuda/cuda_backend.cu, or by src/api/no_cuda.cpp in a build
// without CUDA (where every function reports that CUDA is absent).
#pragma once

#include <cstddef>

#include "common/problem.h"

namespace sfa::cuda {

struct DeviceInfo {
  int sm_count = 0;
  int cc_major = 0;  // compute capability
  int cc_minor = 0;
  size_t smem_per_block_optin = 0;  // bytes a block may use after opting in
  int sm_arch() const { return cc_major * 10 + cc_minor; }
};

bool built();
int device_count();
// Whether this build holds a launcher for `kernel` (kernels land one by one).
bool has_kernel(Kernel kernel);
// Properties of CUDA device `index` (cached after the first query; no synchronisation).
Status device_info(int index, DeviceInfo* info);

// Runs a validated problem with `kernel` (already chosen by select_kernel) on the tensors' device
// (`device` is its ordinal), queued on `launch.stream`. Checks every launch.
Status run_attention(Kernel kernel, const AttentionProblem& p, int device, const Launch& launch);
Status run_decode(Kernel kernel, const DecodeProblem& p, int device, const Launch& launch);

// Scratch the standard-attention kernel needs: float32 scores for one launch.
size_t standard_workspace_size(const AttentionProblem& p);
// Scratch FlashAttention-1 needs: its O, l and m, kept in global memory between K/V blocks.
size_t fa1_workspace_size(const AttentionProblem& p);

}  // namespace sfa::cuda
