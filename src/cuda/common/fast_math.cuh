// Special-function-unit math for the softmax: exp2 and tanh without the library's range handling.
#pragma once

namespace sfa::cuda {

// 2^x (relative error about 2^-22; exp2(-inf) = 0, denormal results flush to 0).
__device__ __forceinline__ float exp2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// exp2_approx as a function object (OnlineSoftmax's exp2 argument).
struct Exp2Approx {
  __device__ __forceinline__ float operator()(float x) const { return exp2_approx(x); }
};

// tanh(x) = 1 - 2 / (exp(2x) + 1): absolute error about 1e-7 over the whole range (tanh.approx
// is faster but only good to about 5e-4, which a softcap of 50 would turn into a 0.03 error in a
// logit). Saturates cleanly: exp -> inf gives 1, exp -> 0 gives -1.
__device__ __forceinline__ float tanh_accurate(float x) {
  constexpr float kTwoLog2e = 2.0f * 1.4426950408889634f;
  const float e = exp2_approx(x * kTwoLog2e);
  return 1.0f - __fdividef(2.0f, e + 1.0f);
}

}  // namespace sfa::cuda
