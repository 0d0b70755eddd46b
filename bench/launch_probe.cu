// What a kernel launch costs in the decode benchmarks' timing: CUDA events around one launch of a
// kernel that does almost nothing, after the same 256 MB L2 flush (a cudaMemsetAsync), for grids
// of 32 / 132 / 512 blocks of 256 threads and 0 to 200 KB of dynamic shared memory. The median
// and the minimum of 40 launches are printed in microseconds. Every decode_fast point pays this
// floor; with one block per SM (decode_fast's 197 KB) a grid of several waves also waits for each
// block to leave before the next one starts on its SM.
//
// usage: launch_probe   (no arguments)
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "check_cuda.h"

namespace {

constexpr size_t kFlushBytes = 256ull << 20;
constexpr int kMaxSmemKb = 200;
constexpr int kReps = 40;

// Touches its shared memory (so that it is allocated) and writes one value per block.
__global__ void touch(float* out, int smem_floats) {
  extern __shared__ float s[];
  if (smem_floats > 0) s[threadIdx.x] = static_cast<float>(threadIdx.x);
  __syncthreads();
  if (threadIdx.x == 0 && smem_floats > 0) out[blockIdx.x] = s[(threadIdx.x + 1) % blockDim.x];
}

}  // namespace

int main() {
  void* flush = nullptr;
  float* out = nullptr;
  CHECK_CUDA(cudaMalloc(&flush, kFlushBytes));
  CHECK_CUDA(cudaMalloc(&out, 4096 * sizeof(float)));
  CHECK_CUDA(cudaFuncSetAttribute(touch, cudaFuncAttributeMaxDynamicSharedMemorySize, kMaxSmemKb * 1024));
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  std::printf("%6s %8s | %10s %8s\n", "blocks", "smem KB", "median us", "min us");
  for (int blocks : {32, 132, 512}) {
    for (int kb : {0, 16, 48, 96, 128, 192, kMaxSmemKb}) {
      std::vector<float> us;
      for (int r = 0; r < kReps; ++r) {
        CHECK_CUDA(cudaMemsetAsync(flush, r & 0xff, kFlushBytes));
        CHECK_CUDA(cudaEventRecord(start));
        touch<<<blocks, 256, kb * 1024>>>(out, kb * 1024 / 4);
        CHECK_CUDA(cudaGetLastError());
        CHECK_CUDA(cudaEventRecord(stop));
        CHECK_CUDA(cudaEventSynchronize(stop));
        float ms = 0.0f;
        CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
        us.push_back(ms * 1000.0f);
      }
      std::sort(us.begin(), us.end());
      std::printf("%6d %8d | %10.2f %8.2f\n", blocks, kb, us[us.size() / 2], us[0]);
    }
  }
  CHECK_CUDA(cudaFree(flush));
  CHECK_CUDA(cudaFree(out));
  return 0;
}
