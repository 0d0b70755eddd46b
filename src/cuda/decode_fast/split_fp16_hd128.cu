// decode_fast split kernel, fp16, head_dim 128 (one instantiation per file: builds parallelise).
#include "cuda/decode_fast/split_kernel.cuh"

namespace sfa::cuda::decode_fast {
template Status launch_split<__half, 128>(const DecodeProblem&, const DeviceInfo&, cudaStream_t);
}  // namespace sfa::cuda::decode_fast
