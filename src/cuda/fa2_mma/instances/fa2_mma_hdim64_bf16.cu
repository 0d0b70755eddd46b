// One fa2_mma instantiation per translation unit, so builds parallelise.
#include "cuda/fa2_mma/fa2_mma_kernel.cuh"

namespace sfa::cuda {
template Status run_fa2_mma<__nv_bfloat16, 64, false>(const AttentionProblem&, const DeviceInfo&, cudaStream_t);
}  // namespace sfa::cuda
