// What a kernel launch costs in the decode benchmarks' timing: CUDA events around one launch of a
// kernel that does almost nothing, after the same 256 MB L2 flush (a cudaMemsetAsync), for grids
// of 32 / 132 / 512 blocks of 256 threads and 0 to 200 KB of dynamic shared memory. The median
// and the minimum of 40 launches are printed in microseconds. Every decode_fast point pays this
// floor; with one block per SM (decode_fast's 197 KB) a grid of several waves also waits for each
// block to leave before the next one starts on its SM.
//
// On sm90 a second table launches the same kernel as thread-block clusters of 2, 4 and 8 (every block
// arrives at and waits on the cluster barrier, as decode_fast's cluster kernel does), for 32 to 128
// clusters and 96 or 192 KB per block, beside cudaOccupancyMaxActiveClusters for that shape: what a
// cluster merge pays before any data moves.
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

// touch() with the cluster barrier (arrive at the start, wait at the end), launched as clusters.
__global__ void touch_cluster(float* out, int smem_floats) {
  extern __shared__ float s[];
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.arrive.relaxed.aligned;\n" ::: "memory");
#endif
  if (smem_floats > 0) s[threadIdx.x] = static_cast<float>(threadIdx.x);
  __syncthreads();
  if (threadIdx.x == 0 && smem_floats > 0) out[blockIdx.x] = s[(threadIdx.x + 1) % blockDim.x];
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.wait.acquire.aligned;\n" ::: "memory");
#endif
}

// The median and minimum event time (us) of kReps launches of `launch`, each after the flush.
template <typename Launch>
void time_launches(void* flush, Launch&& launch, float* median, float* minimum) {
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  std::vector<float> us;
  for (int r = 0; r < kReps; ++r) {
    CHECK_CUDA(cudaMemsetAsync(flush, r & 0xff, kFlushBytes));
    CHECK_CUDA(cudaEventRecord(start));
    launch();
    CHECK_CUDA(cudaGetLastError());
    CHECK_CUDA(cudaEventRecord(stop));
    CHECK_CUDA(cudaEventSynchronize(stop));
    float ms = 0.0f;
    CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
    us.push_back(ms * 1000.0f);
  }
  std::sort(us.begin(), us.end());
  *median = us[us.size() / 2];
  *minimum = us[0];
  CHECK_CUDA(cudaEventDestroy(start));
  CHECK_CUDA(cudaEventDestroy(stop));
}

}  // namespace

int main() {
  void* flush = nullptr;
  float* out = nullptr;
  CHECK_CUDA(cudaMalloc(&flush, kFlushBytes));
  CHECK_CUDA(cudaMalloc(&out, 4096 * sizeof(float)));
  CHECK_CUDA(cudaFuncSetAttribute(touch, cudaFuncAttributeMaxDynamicSharedMemorySize, kMaxSmemKb * 1024));
  std::printf("%6s %8s | %10s %8s\n", "blocks", "smem KB", "median us", "min us");
  for (int blocks : {32, 132, 512}) {
    for (int kb : {0, 16, 48, 96, 128, 192, kMaxSmemKb}) {
      float median = 0.0f, minimum = 0.0f;
      time_launches(
          flush, [&] { touch<<<blocks, 256, kb * 1024>>>(out, kb * 1024 / 4); }, &median, &minimum);
      std::printf("%6d %8d | %10.2f %8.2f\n", blocks, kb, median, minimum);
    }
  }

  int device = 0, major = 0;
  CHECK_CUDA(cudaGetDevice(&device));
  CHECK_CUDA(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  if (major < 9) {
    std::printf("clusters: need sm90\n");
  } else {
    CHECK_CUDA(cudaFuncSetAttribute(touch_cluster, cudaFuncAttributeMaxDynamicSharedMemorySize, kMaxSmemKb * 1024));
    std::printf("\n%7s %8s %8s %8s | %12s | %10s %8s\n", "cluster", "clusters", "blocks", "smem KB", "max active",
                "median us", "min us");
    for (int size : {1, 2, 4, 8}) {
      for (int clusters : {8, 16, 32, 64}) {
        if (clusters * size > 256) continue;
        for (int kb : {96, 192}) {
          cudaLaunchConfig_t config = {};
          config.gridDim = dim3(clusters * size);
          config.blockDim = dim3(256);
          config.dynamicSmemBytes = static_cast<size_t>(kb) * 1024;
          cudaLaunchAttribute attribute = {};
          attribute.id = cudaLaunchAttributeClusterDimension;
          attribute.val.clusterDim.x = size;
          attribute.val.clusterDim.y = 1;
          attribute.val.clusterDim.z = 1;
          config.attrs = &attribute;
          config.numAttrs = 1;
          int active = 0;
          CHECK_CUDA(cudaOccupancyMaxActiveClusters(&active, touch_cluster, &config));
          const int smem_floats = kb * 1024 / 4;
          float median = 0.0f, minimum = 0.0f;
          time_launches(
              flush, [&] { CHECK_CUDA(cudaLaunchKernelEx(&config, touch_cluster, out, smem_floats)); }, &median,
              &minimum);
          std::printf("%7d %8d %8d %8d | %12d | %10.2f %8.2f\n", size, clusters, clusters * size, kb, active, median,
                      minimum);
        }
      }
    }
  }
  CHECK_CUDA(cudaFree(flush));
  CHECK_CUDA(cudaFree(out));
  return 0;
}
