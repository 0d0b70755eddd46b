// Asynchronous global -> shared copies (cp.async, sm80+): issue, group, wait.
#pragma once

#include <cstdint>

namespace sfa::cuda {

// Copies 16 bytes from global `src` to shared address `dst`, bypassing L1 (.cg). When `valid` is
// false the copy's source size is 0: nothing is read (src is not dereferenced, so it may point
// past the tensor) and the 16 bytes are zero-filled.
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, bool valid) {
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}

// Copies 16 bytes from global `src` to shared address `dst` (.cg: bypassing L1).
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(src));
}

// Closes the group of copies issued since the last commit.
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }

// Waits until at most `kPending` committed groups are still in flight (this thread's copies only:
// follow with __syncthreads() before reading what other threads copied).
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}

}  // namespace sfa::cuda
