// decode_fast's launch functions: one pass-1 instantiation (split kernel and, on sm90, cluster
// kernel) per (dtype, head_dim), each in its own translation unit (split_<dtype>_hd<d>.cu), and
// the combine kernel.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "common/problem.h"
#include "cuda/cuda_backend.h"
#include "cuda/decode_fast/config.h"

namespace sfa::cuda::decode_fast {

// Programmatic dependent launch needs sm90.
constexpr int kDependentLaunchMinSm = 90;

// Pass 1: partial (or, with one split, final) results of every split. *merged: the launch also
// merged the splits (the sm90 cluster kernel), so no combine kernel follows.
template <typename Element, int kHeadDim>
Status launch_split(const DecodeProblem& p, const DeviceInfo& info, cudaStream_t stream, bool* merged);

#define SFA_DECODE_FAST_SPLIT(Element, kHeadDim)                                                    \
  extern template Status launch_split<Element, kHeadDim>(const DecodeProblem&, const DeviceInfo&, cudaStream_t, \
                                                         bool*);
SFA_DECODE_FAST_SPLIT(__half, 64)
SFA_DECODE_FAST_SPLIT(__half, 128)
SFA_DECODE_FAST_SPLIT(__half, 256)
SFA_DECODE_FAST_SPLIT(__nv_bfloat16, 64)
SFA_DECODE_FAST_SPLIT(__nv_bfloat16, 128)
SFA_DECODE_FAST_SPLIT(__nv_bfloat16, 256)
#undef SFA_DECODE_FAST_SPLIT

// Pass 2 (num_splits > 1): merges the partial results into out and lse.
Status launch_combine(const DecodeProblem& p, const DeviceInfo& info, cudaStream_t stream);

}  // namespace sfa::cuda::decode_fast
