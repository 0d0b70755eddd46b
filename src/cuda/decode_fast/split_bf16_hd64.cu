// decode_fast split kernel, bf16, head_dim 64 (one instantiation per file: builds parallelise).
#include "cuda/decode_fast/split_kernel.cuh"

namespace sfa::cuda::decode_fast {
template Status launch_split<__nv_bfloat16, 64>(const DecodeProblem&, const DeviceInfo&, cudaStream_t);
}  // namespace sfa::cuda::decode_fast
