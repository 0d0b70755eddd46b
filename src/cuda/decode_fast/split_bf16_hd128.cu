// decode_fast pass 1 (split and cluster kernels), bf16, head_dim 128 (one instantiation per file: builds parallelise).
#include "cuda/decode_fast/launch_split.cuh"

namespace sfa::cuda::decode_fast {
template Status launch_split<__nv_bfloat16, 128>(const DecodeProblem&, const DeviceInfo&, cudaStream_t, bool*);
}  // namespace sfa::cuda::decode_fast
