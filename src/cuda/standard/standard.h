// Standard attention (the framework way: GEMM, softmax, GEMM): the workspace layout and the two
// small kernels around the cuBLAS calls. See standard.cu.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "common/problem.h"

namespace sfa::cuda {

// Carved out of the caller's workspace (offsets in bytes, each 256-byte aligned):
//   cuBLAS's own workspace | 6 device arrays of batch*heads matrix pointers | S float32 | P
// S is [batch*heads, seqlen_q, ld_s] with ld_s = seqlen_k rounded up to 4 (16-byte rows). P is S
// itself for float32 problems (softmax in place), else [batch*heads, seqlen_q, ld_p] in the input
// dtype with ld_p = seqlen_k rounded up to 8: cuBLAS multiplies two matrices of one type only.
struct StandardLayout {
  size_t cublas = 0, pointers = 0, s = 0, p = 0, total = 0;
  int64_t ld_s = 0, ld_p = 0;
};
StandardLayout standard_layout(const AttentionProblem& p);

// Device pointer arrays of the two batched GEMMs, one entry per (batch, head), item t = b * heads + h.
struct StandardPointers {
  const void** k;  // S^T = K Q^T: A = K of kv head h / (heads / heads_kv)
  const void** q;  //              B = Q of head h
  void** s;        //              C = S of item t
  const void** v;  // O^T = V^T P^T: A = V
  const void** p;  //                B = P of item t
  void** o;        //                C = out of head h
};

// Fills the pointer arrays on the device (so no host-to-device copy is needed).
Status launch_standard_pointers(const AttentionProblem& p, const StandardPointers& ptrs, const float* s,
                                const void* pbuf, int64_t ld_s, int64_t ld_p, cudaStream_t stream);

// P = softmax(mask(softcap(S))) row by row (P may alias S for float32), and lse. With zero_out
// (seqlen_k = 0, no GEMM runs) it writes out = 0 instead.
Status launch_standard_softmax(const AttentionProblem& p, const float* s, int64_t ld_s, void* pbuf,
                               int64_t ld_p, bool zero_out, cudaStream_t stream);

}  // namespace sfa::cuda
