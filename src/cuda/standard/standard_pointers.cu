// Standard attention: the per-(batch, head) matrix pointers of the two batched GEMMs.
//
// cuBLAS's strided-batched GEMM needs one stride between consecutive matrices, but the heads of a
// [batch, seqlen, heads, head_dim] tensor are two strides apart (batch and head), and with GQA the
// K/V matrix of query head h is kv head h / (heads / heads_kv). A pointer per matrix expresses all
// of these, so the GEMMs use cublasGemmBatchedEx with arrays this kernel writes into the workspace.
// Grid: one thread per (batch, head) item t = b * heads + h, kThreads per block.
#include "cuda/common/check.cuh"
#include "cuda/standard/standard.h"

namespace sfa::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads)
    standard_pointers_kernel(const AttentionProblem p, const StandardPointers ptrs, const char* s,
                             const char* pbuf, int64_t s_matrix_bytes, int64_t p_matrix_bytes, int elem) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (t >= static_cast<int64_t>(p.batch) * p.heads) return;
  const int64_t b = t / p.heads, h = t % p.heads, h_kv = h / (p.heads / p.heads_kv);
  ptrs.q[t] = static_cast<const char*>(p.q) + (b * p.q_stride.batch + h * p.q_stride.head) * elem;
  ptrs.k[t] = static_cast<const char*>(p.k) + (b * p.k_stride.batch + h_kv * p.k_stride.head) * elem;
  ptrs.v[t] = static_cast<const char*>(p.v) + (b * p.v_stride.batch + h_kv * p.v_stride.head) * elem;
  ptrs.o[t] = static_cast<char*>(p.out) + (b * p.out_stride.batch + h * p.out_stride.head) * elem;
  ptrs.s[t] = const_cast<char*>(s) + t * s_matrix_bytes;
  ptrs.p[t] = pbuf + t * p_matrix_bytes;
}

}  // namespace

Status launch_standard_pointers(const AttentionProblem& p, const StandardPointers& ptrs, const float* s,
                                const void* pbuf, int64_t ld_s, int64_t ld_p, cudaStream_t stream) {
  const int64_t items = static_cast<int64_t>(p.batch) * p.heads;
  const int elem = static_cast<int>(dtype_size(p.dtype));
  const int64_t p_elem = pbuf == static_cast<const void*>(s) ? sizeof(float) : elem;
  standard_pointers_kernel<<<static_cast<unsigned>((items + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
      p, ptrs, reinterpret_cast<const char*>(s), static_cast<const char*>(pbuf),
      p.seqlen_q * ld_s * static_cast<int64_t>(sizeof(float)), p.seqlen_q * ld_p * p_elem, elem);
  return check_launch("standard_pointers_kernel");
}

}  // namespace sfa::cuda
