// Thread-block cluster primitives (sm90) as PTX: the cluster barrier in its two halves,
// asynchronous stores into a peer block's shared memory (distributed shared memory), and the
// transaction barrier (mbarrier) such stores complete on. The cluster kernel is launched only on
// sm90 and newer (launch_split.cuh); below sm90 these trap, so a build for several architectures
// still compiles.
//
// The barrier: every thread of every block of the cluster calls cluster_arrive_relaxed() then
// cluster_wait(). The relaxed arrive orders nothing but the mbarrier initialisation fenced before
// it: it says "this block has started", which a block must know of a peer before writing into its
// shared memory; wait has acquire semantics.
//
// Asynchronous stores (st_async) into a peer signal the peer's mbarrier with their byte count when
// they land: a block that announced N bytes (mbarrier_expect_bytes) and waits on its mbarrier
// (mbarrier_wait_first_phase) then sees all of them, with no second cluster barrier and no memory
// fence on the writers' side.
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

// Initialises a one-arrival mbarrier at shared address `s_bar` (8-byte aligned), then makes the
// initialisation visible to the cluster's later accesses (before the cluster barrier that tells
// peers this block has started).
__device__ __forceinline__ void mbarrier_init_for_cluster(uint32_t s_bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(s_bar) : "memory");
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#else
  __trap();
#endif
}

// The mbarrier's one arrival, announcing `bytes` of asynchronous stores for its first phase.
__device__ __forceinline__ void mbarrier_expect_bytes(uint32_t s_bar, uint32_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("{ .reg .b64 state; mbarrier.arrive.expect_tx.shared::cta.b64 state, [%0], %1; }\n" ::"r"(s_bar),
               "r"(bytes)
               : "memory");
#else
  __trap();
#endif
}

// Waits until the mbarrier's first phase completes (its arrival made and every announced byte
// landed); the landed bytes are then visible to the waiting thread.
__device__ __forceinline__ void mbarrier_wait_first_phase(uint32_t s_bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  uint32_t done = 0;
  do {
    asm volatile(
        "{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], 0; selp.u32 %0, 1, 0, p; }\n"
        : "=r"(done)
        : "r"(s_bar)
        : "memory");
  } while (!done);
#else
  __trap();
#endif
}

// Asynchronous stores into a block of the cluster (`remote` from cluster_map) that complete on that
// block's mbarrier (`remote_bar`, also from cluster_map) with their size in bytes.
__device__ __forceinline__ void st_async(uint32_t remote, float4 v, uint32_t remote_bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("st.async.shared::cluster.mbarrier::complete_tx::bytes.v4.f32 [%0], {%1, %2, %3, %4}, [%5];\n" ::"r"(
                   remote),
               "f"(v.x), "f"(v.y), "f"(v.z), "f"(v.w), "r"(remote_bar)
               : "memory");
#else
  __trap();
#endif
}

__device__ __forceinline__ void st_async(uint32_t remote, float v, uint32_t remote_bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("st.async.shared::cluster.mbarrier::complete_tx::bytes.f32 [%0], %1, [%2];\n" ::"r"(remote), "f"(v),
               "r"(remote_bar)
               : "memory");
#else
  __trap();
#endif
}

}  // namespace sfa::cuda::decode_fast
