// launch_fa2_mma: runtime (dtype, head_dim, causal) -> one compiled instantiation.
//
// Each instantiation lives in its own translation unit under instances/ (see sources.cmake);
// SFA_FA2_MMA_HDIM_<d> says which head dims this build holds.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <string>

#include "cuda/launchers.h"

namespace sfa::cuda {

// Defined in fa2_mma_kernel.cuh and instantiated in instances/*.cu.
template <typename T, int kHeadDim, bool kCausal>
Status run_fa2_mma(const AttentionProblem& p, const DeviceInfo& info, cudaStream_t stream);

// The wgmma kernel (fa2_mma_sm90.cuh), instantiated in instances/fa2_wgmma_*.cu when the build
// has the sm_90a binary (SFA_FA2_MMA_WGMMA_HDIM_<d>): head_dim 64, 128 and 256 on compute
// capability 9.0, in place of the mma.sync tiles.
template <typename T, int kHeadDim, bool kCausal>
Status run_fa2_wgmma(const AttentionProblem& p, const DeviceInfo& info, cudaStream_t stream);

namespace {

// Whether the build has the wgmma kernel of head_dim d (instances/fa2_wgmma_*.cu).
constexpr bool wgmma_built(int d) {
  return
#ifdef SFA_FA2_MMA_WGMMA_HDIM_64
      d == 64 ||
#endif
#ifdef SFA_FA2_MMA_WGMMA_HDIM_128
      d == 128 ||
#endif
#ifdef SFA_FA2_MMA_WGMMA_HDIM_256
      d == 256 ||
#endif
      false;
}

// The wgmma kernel on compute capability 9.0 where the build has it, else the mma.sync tiles.
template <typename T, int kHeadDim, bool kCausal>
Status run_head_dim(const AttentionProblem& p, const DeviceInfo& info, cudaStream_t stream, bool wgmma) {
  if constexpr (wgmma_built(kHeadDim)) {
    if (wgmma && info.sm_arch() == 90) return run_fa2_wgmma<T, kHeadDim, kCausal>(p, info, stream);
  }
  return run_fa2_mma<T, kHeadDim, kCausal>(p, info, stream);
}

template <typename T, bool kCausal>
Status dispatch_head_dim(const AttentionProblem& p, const DeviceInfo& info, cudaStream_t stream, bool wgmma) {
  switch (p.head_dim) {
#ifdef SFA_FA2_MMA_HDIM_32
    case 32: return run_fa2_mma<T, 32, kCausal>(p, info, stream);
#endif
#ifdef SFA_FA2_MMA_HDIM_64
    case 64: return run_head_dim<T, 64, kCausal>(p, info, stream, wgmma);
#endif
#ifdef SFA_FA2_MMA_HDIM_96
    case 96: return run_fa2_mma<T, 96, kCausal>(p, info, stream);
#endif
#ifdef SFA_FA2_MMA_HDIM_128
    case 128: return run_head_dim<T, 128, kCausal>(p, info, stream, wgmma);
#endif
#ifdef SFA_FA2_MMA_HDIM_192
    case 192: return run_fa2_mma<T, 192, kCausal>(p, info, stream);
#endif
#ifdef SFA_FA2_MMA_HDIM_256
    case 256: return run_head_dim<T, 256, kCausal>(p, info, stream, wgmma);
#endif
    default:
      return Status(StatusCode::kUnsupported, "fa2_mma: head_dim " + std::to_string(p.head_dim) +
                                                  " is not built (SFA_FA2_MMA_HEAD_DIMS)");
  }
}

template <typename T>
Status dispatch_causal(const AttentionProblem& p, const DeviceInfo& info, cudaStream_t stream, bool wgmma) {
  // Any bounded key range (causal or a sliding window) takes the causal instantiation.
  const bool windowed = p.window_left >= 0 || p.window_right >= 0;
  return windowed ? dispatch_head_dim<T, true>(p, info, stream, wgmma)
                  : dispatch_head_dim<T, false>(p, info, stream, wgmma);
}

}  // namespace

Status launch_fa2_mma(const AttentionProblem& p, const DeviceInfo& info, cudaStream_t stream, bool wgmma) {
  switch (p.dtype) {
    case DType::kFloat16: return dispatch_causal<__half>(p, info, stream, wgmma);
    case DType::kBFloat16: return dispatch_causal<__nv_bfloat16>(p, info, stream, wgmma);
    default:
      return Status(StatusCode::kUnsupported,
                    std::string("fa2_mma: needs float16 or bfloat16, got ") + dtype_name(p.dtype));
  }
}

}  // namespace sfa::cuda
