// Tensor-core vocabulary for sm80+: mma.sync m16n8k16 fragments, ldmatrix and packing.
//
// Fragment layouts of mma.sync.m16n8k16 (PTX ISA, "Matrix fragments for mma.m16n8k16"), per
// lane, with g = lane / 4 (the group) and t = lane % 4 (the thread in the group):
//   A, 16x16 row-major, FragA::x[i] holds two 16-bit values:
//       x[0] = A[g][2t, 2t+1]    x[1] = A[g+8][2t, 2t+1]
//       x[2] = A[g][2t+8, 2t+9]  x[3] = A[g+8][2t+8, 2t+9]
//   B, 16x8 ("col": element pairs run along k), FragB::x[i]:
//       x[0] = B[2t, 2t+1][g]    x[1] = B[2t+8, 2t+9][g]
//   C/D, 16x8 float32, FragC::x[i]:
//       x[0], x[1] = C[g][2t, 2t+1]    x[2], x[3] = C[g+8][2t, 2t+1]
// Two neighbouring C tiles (columns 0-7 and 8-15), packed to 16 bits pairwise, are exactly one A
// fragment with k = those 16 columns: that is how attention keeps P in registers for P V.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace sfa::cuda {

struct FragA { uint32_t x[4]; };
struct FragB { uint32_t x[2]; };
struct FragC { float x[4]; };

// D = A B + D, float32 accumulate.
template <typename T>
__device__ __forceinline__ void mma_m16n8k16(FragC& d, const FragA& a, const FragB& b);

template <>
__device__ __forceinline__ void mma_m16n8k16<__half>(FragC& d, const FragA& a, const FragB& b) {
  asm(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d.x[0]), "+f"(d.x[1]), "+f"(d.x[2]), "+f"(d.x[3])
      : "r"(a.x[0]), "r"(a.x[1]), "r"(a.x[2]), "r"(a.x[3]), "r"(b.x[0]), "r"(b.x[1]));
}

template <>
__device__ __forceinline__ void mma_m16n8k16<__nv_bfloat16>(FragC& d, const FragA& a, const FragB& b) {
  asm(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d.x[0]), "+f"(d.x[1]), "+f"(d.x[2]), "+f"(d.x[3])
      : "r"(a.x[0]), "r"(a.x[1]), "r"(a.x[2]), "r"(a.x[3]), "r"(b.x[0]), "r"(b.x[1]));
}

// Four 8x8 matrices of 16-bit values from shared memory. Lanes 8i..8i+7 give the row addresses
// (16 contiguous bytes each) of matrix i, and r[i] receives it: lane l gets row l / 4, columns
// 2 (l % 4) and 2 (l % 4) + 1.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t smem_addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr));
}

// As ldmatrix_x4, each matrix transposed: lane l gets column l / 4, rows 2 (l % 4) and 2 (l % 4) + 1.
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t smem_addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr));
}

// Two floats rounded to one 32-bit register of 16-bit values (lo in the low half).
template <typename T>
__device__ __forceinline__ uint32_t pack_pair(float lo, float hi);

template <>
__device__ __forceinline__ uint32_t pack_pair<__half>(float lo, float hi) {
  __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}

template <>
__device__ __forceinline__ uint32_t pack_pair<__nv_bfloat16>(float lo, float hi) {
  __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}

// The shared-memory address (32-bit, .shared window) of a generic pointer into shared memory.
__device__ __forceinline__ uint32_t smem_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

}  // namespace sfa::cuda
