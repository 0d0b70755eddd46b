// The second kernel of Flash-Decoding: merges the splits' partial outputs (decode_combine.cu).
#pragma once

#include <cuda_runtime.h>

#include "common/problem.h"

namespace sfa::cuda {

// out, lse = merge over p.num_splits of (p.workspace_out, p.workspace_lse). Needs num_splits > 1.
Status launch_decode_combine(const DecodeProblem& p, cudaStream_t stream);

}  // namespace sfa::cuda
