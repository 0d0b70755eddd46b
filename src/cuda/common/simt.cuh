// Small SIMT helpers shared by the teaching kernels (fa1, fa2, decode, standard): the storage
// type of each DType, 16-byte vector loads converted to float, stores rounded to the storage type,
// shuffle reductions, and the dtype / head-dim dispatch that turns runtime values into templates.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <type_traits>

#include "sfa/tensor.h"

namespace sfa::cuda::simt {

constexpr int kWarpSize = 32;
constexpr int kVecBytes = 16;  // every global load is one 16-byte vector (LDG.128)

// Elements of T in one 16-byte vector: 4 float32, 8 float16 / bfloat16.
template <typename T>
constexpr int kVecElems = kVecBytes / static_cast<int>(sizeof(T));

// ---- conversions ---------------------------------------------------------------------------
__device__ __forceinline__ float2 to_float2(__half2 h) { return __half22float2(h); }
__device__ __forceinline__ float2 to_float2(__nv_bfloat162 h) { return __bfloat1622float2(h); }

template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) { return x; }
template <>
__device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// r[0 .. kVecElems<T>) = the 16 bytes at p (16-byte aligned), converted to float.
__device__ __forceinline__ void load_vec(const float* __restrict__ p, float* r) {
  const float4 v = __ldg(reinterpret_cast<const float4*>(p));
  r[0] = v.x, r[1] = v.y, r[2] = v.z, r[3] = v.w;
}
template <typename T>
__device__ __forceinline__ void load_vec(const T* __restrict__ p, float* r) {
  using T2 = typename std::conditional<std::is_same<T, __half>::value, __half2, __nv_bfloat162>::type;
  const uint4 v = __ldg(reinterpret_cast<const uint4*>(p));
  const uint32_t words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = to_float2(*reinterpret_cast<const T2*>(&words[i]));
    r[2 * i] = f.x, r[2 * i + 1] = f.y;
  }
}

// Stores kN (4 or 8) floats rounded to T at p (aligned to kN * sizeof(T) bytes): one vector store.
template <int kN>
__device__ __forceinline__ void store_vec(float* p, const float* r) {
#pragma unroll
  for (int i = 0; i < kN; i += 4) {
    *reinterpret_cast<float4*>(p + i) = make_float4(r[i], r[i + 1], r[i + 2], r[i + 3]);
  }
}
template <int kN, typename T>
__device__ __forceinline__ void store_vec(T* p, const float* r) {
  static_assert(kN == 4 || kN == 8, "4 or 8 elements");
  T h[kN];
#pragma unroll
  for (int i = 0; i < kN; ++i) h[i] = from_float<T>(r[i]);
  if constexpr (kN == 8) {
    *reinterpret_cast<uint4*>(p) = *reinterpret_cast<const uint4*>(h);
  } else {
    *reinterpret_cast<uint2*>(p) = *reinterpret_cast<const uint2*>(h);
  }
}

// ---- warp reductions over aligned groups of kLanes lanes (kLanes a power of two <= 32) --------
template <int kLanes>
__device__ __forceinline__ float group_max(float x) {
#pragma unroll
  for (int offset = kLanes / 2; offset > 0; offset /= 2) {
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, offset));
  }
  return x;
}
template <int kLanes>
__device__ __forceinline__ float group_sum(float x) {
#pragma unroll
  for (int offset = kLanes / 2; offset > 0; offset /= 2) x += __shfl_xor_sync(0xffffffffu, x, offset);
  return x;
}

// ---- runtime -> compile time ---------------------------------------------------------------
template <typename T>
struct TypeTag {
  using type = T;
};

// Calls f(TypeTag<T>{}) with the storage type of `dtype` (float, __half, __nv_bfloat16).
template <typename F>
Status dispatch_dtype(DType dtype, F&& f) {
  switch (dtype) {
    case DType::kFloat32: return f(TypeTag<float>{});
    case DType::kFloat16: return f(TypeTag<__half>{});
    case DType::kBFloat16: return f(TypeTag<__nv_bfloat16>{});
    default:
      return Status(StatusCode::kInternal, std::string("unexpected dtype ") + dtype_name(dtype));
  }
}

// Calls f(std::integral_constant<int, kMaxD>{}) with the smallest of 64, 128, 256 that holds
// head_dim. The teaching kernels size their register tiles by kMaxD and loop to the runtime
// head_dim, so three instantiations serve every head_dim the API accepts (multiples of 8 <= 256).
template <typename F>
Status dispatch_head_dim(int head_dim, F&& f) {
  if (head_dim <= 64) return f(std::integral_constant<int, 64>{});
  if (head_dim <= 128) return f(std::integral_constant<int, 128>{});
  if (head_dim <= 256) return f(std::integral_constant<int, 256>{});
  return Status(StatusCode::kInternal, "head_dim " + std::to_string(head_dim) + " above 256");
}

}  // namespace sfa::cuda::simt
