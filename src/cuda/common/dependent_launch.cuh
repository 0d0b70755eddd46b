// Programmatic dependent launch (sm90+): a kernel launched with the attribute
// cudaLaunchAttributeProgrammaticStreamSerialization may start while the previous kernel in the
// stream is still finishing, which hides its launch latency. It must call wait_for_prior_grid()
// before it reads anything the previous kernel writes. The previous kernel calls
// allow_dependent_launch() once it no longer needs the SMs for new blocks.
// Below sm90 both are no-ops and the launch attribute is not used (ordinary stream order).
#pragma once

namespace sfa::cuda {

// Blocks until the previous grid in the stream has completed and its writes are visible.
// Returns at once when the kernel was not launched as a dependent.
__device__ __forceinline__ void wait_for_prior_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

// Lets the next (dependent) grid in the stream start launching.
__device__ __forceinline__ void allow_dependent_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

}  // namespace sfa::cuda
