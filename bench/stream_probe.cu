// How fast N blocks (one per SM, 8 warps, 3 stages of 8 KB per warp: decode_fast's pipeline without
// its math) stream rows of 256 bytes from DRAM into shared memory, with
//   cp.async  16 bytes per lane, 16 copies per lane per 8 KB tile (decode_fast's loader), and
//   bulk      cp.async.bulk, one 256-byte row per lane, completing on a per-stage mbarrier (sm90).
// The rows sit `stride` bytes apart (256: contiguous; 2048: one KV head of 8 in a
// [positions, heads, 128] cache). The L2 is flushed (256 MB written) before each launch; the
// median of 10 launches is printed as GB/s in all and per block.
//
// usage: stream_probe   (no arguments; 4.3 GB of device memory)
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "check_cuda.h"
#include "cuda/common/cp_async.cuh"
#include "cuda/common/mma.cuh"
#include "cuda/decode_fast/cluster.cuh"

namespace {

using sfa::cuda::cp_async_16;
using sfa::cuda::cp_async_commit;
using sfa::cuda::cp_async_wait;
using sfa::cuda::smem_address;
using sfa::cuda::decode_fast::mbarrier_expect_bytes;
using sfa::cuda::decode_fast::mbarrier_init_for_cluster;

constexpr int kWarps = 8, kStages = 3, kTileBytes = 8192, kRowBytes = 256;
constexpr int kTileRows = kTileBytes / kRowBytes;  // 32: one row per lane for the bulk copies

// Block b streams rows [b * rows_per_block, +rows_per_block); warp w takes tiles w, w + 8, ...
// (`mine` of them), into its kStages stages.
struct WarpTiles {
  long long row0;
  int warp, mine;
  char* stages;
  __device__ WarpTiles(char* smem, long long rows_per_block)
      : row0(blockIdx.x * rows_per_block), warp(static_cast<int>(threadIdx.x / 32)) {
    const int tiles = static_cast<int>(rows_per_block / kTileRows);
    mine = tiles > warp ? (tiles - warp + kWarps - 1) / kWarps : 0;
    stages = smem + warp * kStages * kTileBytes;
  }
  __device__ long long first_row(int t) const { return row0 + static_cast<long long>(warp + t * kWarps) * kTileRows; }
};

// Each warp keeps kStages - 1 tiles in flight and reads one word of each landed tile.
__global__ void __launch_bounds__(kWarps * 32, 1)
    stream_cp_async(const char* src, long long rows_per_block, long long stride, float* sink) {
  extern __shared__ __align__(128) char smem[];
  const int lane = threadIdx.x % 32;
  const WarpTiles wt(smem, rows_per_block);
  char* stages = wt.stages;
  float acc = 0;
  for (int it = 1 - kStages; it < wt.mine; ++it) {
    const int ahead = it + kStages - 1;
    if (ahead < wt.mine) {
      const long long r = wt.first_row(ahead);
      char* dst = stages + (ahead % kStages) * kTileBytes;
#pragma unroll
      for (int c = 0; c < kTileBytes / 16 / 32; ++c) {
        const int chunk = c * 32 + lane, row = chunk / 16, col = chunk % 16;
        cp_async_16(smem_address(dst + row * kRowBytes + col * 16), src + (r + row) * stride + col * 16);
      }
    }
    cp_async_commit();
    if (it < 0) continue;
    cp_async_wait<kStages - 1>();
    __syncwarp();
    acc += reinterpret_cast<const float*>(stages + (it % kStages) * kTileBytes)[lane];
    __syncwarp();
  }
  cp_async_wait<0>();
  if (acc == 12345.0f) sink[0] = acc;  // keeps the reads
}

__global__ void __launch_bounds__(kWarps * 32, 1)
    stream_bulk(const char* src, long long rows_per_block, long long stride, float* sink) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  extern __shared__ __align__(128) char smem[];
  __shared__ __align__(8) uint64_t bars[kWarps][kStages];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane < kStages) mbarrier_init_for_cluster(smem_address(&bars[warp][lane]));
  __syncwarp();
  const WarpTiles wt(smem, rows_per_block);
  char* stages = wt.stages;
  float acc = 0;
  for (int it = 1 - kStages; it < wt.mine; ++it) {
    const int ahead = it + kStages - 1;
    if (ahead < wt.mine) {
      const int stage = ahead % kStages;
      const uint32_t bar = smem_address(&bars[warp][stage]);
      if (lane == 0) mbarrier_expect_bytes(bar, kTileBytes);  // this phase's arrival and bytes
      __syncwarp();
      const long long r = wt.first_row(ahead) + lane;
      asm volatile(
          "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
              smem_address(stages + stage * kTileBytes + lane * kRowBytes)),
          "l"(src + r * stride), "r"(kRowBytes), "r"(bar)
          : "memory");
    }
    if (it < 0) continue;
    const int stage = it % kStages;
    const uint32_t bar = smem_address(&bars[warp][stage]);
    const uint32_t parity = (it / kStages) & 1;
    uint32_t done = 0;
    while (!done) {
      asm volatile(
          "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
          : "=r"(done)
          : "r"(bar), "r"(parity)
          : "memory");
    }
    acc += reinterpret_cast<const float*>(stages + stage * kTileBytes)[lane];
    __syncwarp();
  }
  if (acc == 12345.0f) sink[0] = acc;
#else
  __trap();
#endif
}

}  // namespace

int main() {
  int device = 0, major = 0;
  CHECK_CUDA(cudaGetDevice(&device));
  CHECK_CUDA(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  const bool bulk = major >= 9;
  const size_t stream_bytes = 512ull << 20, flush_bytes = 256ull << 20;
  const long long max_stride = 2048;
  char *buf = nullptr, *flush = nullptr;
  float* sink = nullptr;
  CHECK_CUDA(cudaMalloc(&buf, stream_bytes / kRowBytes * max_stride));
  CHECK_CUDA(cudaMalloc(&flush, flush_bytes));
  CHECK_CUDA(cudaMalloc(&sink, sizeof(float)));
  CHECK_CUDA(cudaMemset(buf, 1, stream_bytes / kRowBytes * max_stride));
  const int smem = kWarps * kStages * kTileBytes;
  CHECK_CUDA(cudaFuncSetAttribute(stream_cp_async, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  CHECK_CUDA(cudaFuncSetAttribute(stream_bulk, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  std::printf("%6s %7s %6s | %21s | %21s\n", "stride", "MB", "blocks", "cp.async GB/s (/block)",
              bulk ? "bulk GB/s (/block)" : "bulk: needs sm90");
  for (long long stride : {256LL, max_stride}) {
    for (size_t bytes : {stream_bytes, stream_bytes / 32}) {
      for (int blocks : {8, 16, 32, 48, 64, 96, 128, 132}) {
        const long long rows = static_cast<long long>(bytes / kRowBytes) / blocks / (kWarps * kTileRows) *
                               (kWarps * kTileRows);  // whole tiles for every warp
        double us[2] = {0, 0};
        for (int kind = 0; kind < (bulk ? 2 : 1); ++kind) {
          std::vector<float> t;
          for (int rep = 0; rep < 12; ++rep) {
            CHECK_CUDA(cudaMemsetAsync(flush, rep, flush_bytes));
            CHECK_CUDA(cudaEventRecord(start));
            if (kind == 0) {
              stream_cp_async<<<blocks, kWarps * 32, smem>>>(buf, rows, stride, sink);
            } else {
              stream_bulk<<<blocks, kWarps * 32, smem>>>(buf, rows, stride, sink);
            }
            CHECK_CUDA(cudaGetLastError());
            CHECK_CUDA(cudaEventRecord(stop));
            CHECK_CUDA(cudaEventSynchronize(stop));
            float ms = 0;
            CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
            if (rep >= 2) t.push_back(ms * 1e3f);  // two warm-up launches
          }
          std::sort(t.begin(), t.end());
          us[kind] = t[t.size() / 2];
        }
        const double moved = static_cast<double>(rows) * blocks * kRowBytes;
        auto gbps = [&](double u) { return u > 0 ? moved / u / 1e3 : 0.0; };
        std::printf("%6lld %7.1f %6d | %8.0f (%6.1f)       | %8.0f (%6.1f)\n", stride, moved / 1e6, blocks, gbps(us[0]),
                    gbps(us[0]) / blocks, gbps(us[1]), gbps(us[1]) / blocks);
      }
    }
  }
  return 0;
}
