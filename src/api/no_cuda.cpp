// The CUDA backend of a build without CUDA: it exists, reports that it is absent, and never runs.
#include "cuda/cuda_backend.h"

namespace sfa::cuda {

namespace {
Status absent() { return Status(StatusCode::kUnsupported, "sfa was built without CUDA"); }
}  // namespace

bool built() { return false; }
int device_count() { return 0; }
bool has_kernel(Kernel) { return false; }
Status device_info(int, DeviceInfo*) { return absent(); }
Status run_attention(Kernel, const AttentionProblem&, int, const Launch&) { return absent(); }
Status run_decode(Kernel, const DecodeProblem&, int, const Launch&) { return absent(); }
size_t standard_workspace_size(const AttentionProblem&) { return 0; }
size_t fa1_workspace_size(const AttentionProblem&) { return 0; }

}  // namespace sfa::cuda
