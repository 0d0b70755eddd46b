// One wgmma instantiation (sm_90a binary; the other architectures compile an empty body).
#include "cuda/fa2_mma/fa2_mma_sm90.cuh"

namespace sfa::cuda {
template Status run_fa2_wgmma<__nv_bfloat16, 256, true>(const AttentionProblem&, const DeviceInfo&, cudaStream_t);
}  // namespace sfa::cuda
