// Thread-block cluster primitives (sm90): the cluster barrier in its two halves and stores into a
// peer block's shared memory (distributed shared memory), as PTX. The cluster kernel is launched
// only on sm90 and newer (launch_split.cuh); below sm90 these trap, so a build for several
// architectures still compiles.
//
// The barrier: every thread of every block of the cluster calls cluster_arrive() then
// cluster_wait(), alternately. arrive has release semantics and wait acquire semantics, so stores
// into shared memory (local or a peer's) before a thread's arrive are visible to every thread of
// the cluster after its wait. cluster_arrive_relaxed() orders nothing: it only says "this block
// has started", which a block must know of a peer before writing into its shared memory.
#pragma once

#include <cstdint>

namespace sfa::cuda::decode_fast {

__device__ __forceinline__ void cluster_arrive_relaxed() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.arrive.relaxed.aligned;\n" ::: "memory");
#else
  __trap();
#endif
}

__device__ __forceinline__ void cluster_arrive() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.arrive.release.aligned;\n" ::: "memory");
#else
  __trap();
#endif
}

__device__ __forceinline__ void cluster_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.wait.acquire.aligned;\n" ::: "memory");
#else
  __trap();
#endif
}

// The address, in the cluster's shared window, of local shared address `s_addr` in block `rank`
// of the cluster.
__device__ __forceinline__ uint32_t cluster_map(uint32_t s_addr, int rank) {
  uint32_t remote = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(remote) : "r"(s_addr), "r"(rank));
#else
  __trap();
#endif
  return remote;
}

// Stores into shared memory of a block of the cluster (an address from cluster_map).
__device__ __forceinline__ void cluster_store(uint32_t remote, float4 v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("st.shared::cluster.v4.f32 [%0], {%1, %2, %3, %4};\n" ::"r"(remote), "f"(v.x), "f"(v.y), "f"(v.z),
               "f"(v.w)
               : "memory");
#else
  __trap();
#endif
}

__device__ __forceinline__ void cluster_store(uint32_t remote, float v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("st.shared::cluster.f32 [%0], %1;\n" ::"r"(remote), "f"(v) : "memory");
#else
  __trap();
#endif
}

}  // namespace sfa::cuda::decode_fast
