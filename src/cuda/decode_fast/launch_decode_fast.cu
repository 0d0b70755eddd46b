// launch_decode_fast: dtype x head_dim -> the pass-1 instantiation, then the combine kernel when
// the keys are split and pass 1 did not merge them (the sm90 cluster kernel does). One or two
// launches on one stream, no allocation, no host synchronisation: the call can be captured in a
// CUDA graph.
#include "cuda/common/check.cuh"
#include "cuda/decode_fast/launch.h"
#include "cuda/launchers.h"

namespace sfa::cuda {
namespace {

template <typename Element>
Status launch_split_for_head_dim(const DecodeProblem& p, const DeviceInfo& info, cudaStream_t stream,
                                 bool* merged) {
  switch (p.head_dim) {
    case 64: return decode_fast::launch_split<Element, 64>(p, info, stream, merged);
    case 128: return decode_fast::launch_split<Element, 128>(p, info, stream, merged);
    case 256: return decode_fast::launch_split<Element, 256>(p, info, stream, merged);
    default:
      return Status(StatusCode::kUnsupported,
                    "kernel 'decode_fast': head_dim must be 64, 128 or 256, got " + std::to_string(p.head_dim));
  }
}

}  // namespace

Status launch_decode_fast(const DecodeProblem& p, const DeviceInfo& info, cudaStream_t stream) {
  if (p.num_splits > 1 && (p.workspace_out == nullptr || p.workspace_lse == nullptr)) {
    return Status(StatusCode::kInternal, "kernel 'decode_fast': num_splits > 1 without a bound workspace");
  }
  Status st;
  bool merged = false;
  switch (p.dtype) {
    case DType::kFloat16: st = launch_split_for_head_dim<__half>(p, info, stream, &merged); break;
    case DType::kBFloat16: st = launch_split_for_head_dim<__nv_bfloat16>(p, info, stream, &merged); break;
    default:
      return Status(StatusCode::kUnsupported,
                    std::string("kernel 'decode_fast': needs float16 or bfloat16, got ") + dtype_name(p.dtype));
  }
  if (!st || p.num_splits <= 1 || merged) return st;
  return decode_fast::launch_combine(p, info, stream);
}

}  // namespace sfa::cuda
