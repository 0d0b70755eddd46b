// decode_fast's pass-1 launch for one (dtype, head_dim): the cluster kernel where it applies
// (sm90, 2..kMaxClusterSplits splits, as many waves as without clusters), which also merges the
// splits, else the split kernel (followed by the combine kernel when num_splits > 1), with a
// shallower pipeline when its grid takes several waves (config.h, Pipeline).
// Included by the split_<dtype>_hd<d>.cu instantiation files.
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "common/problem.h"
#include "cuda/common/check.cuh"
#include "cuda/cuda_backend.h"
#include "cuda/decode_fast/cluster_kernel.cuh"
#include "cuda/decode_fast/config.h"
#include "cuda/decode_fast/launch.h"
#include "cuda/decode_fast/split_kernel.cuh"
#include "cuda/decode_fast/split_params.h"

namespace sfa::cuda::decode_fast {

constexpr int kMaxCachedDevices = 16;

// Cache policy and start-up prefetch, from the H100 measurements in docs/decode_fast.md:
//  - K and V stream L2 evict-first when they total at most kEvictFirstMaxL2 L2 sizes (6-11%
//    faster at 34-134 MB on the 50 MB L2, no change at 268 MB, 1-4% slower from 537 MB);
//  - every grid prefetches its first tiles before the length arrives (0.3-0.5 us off a
//    latency-bound batch-1 step, 1.0% off batch 64 / kv 1k; round 7: 1.2-1.5% off batch 16 /
//    kv 1k, 128 blocks, where it once cost 0.7-1 us, and no change at kv 8k). It stays a launch
//    parameter: the kernel with the prefetch unconditional measured 2-6% slower at batch 1.
constexpr int64_t kEvictFirstMaxL2 = 4;
// The shallow pipeline (config.h, Pipeline) runs grids of several waves whose blocks read at
// most this many keys: 0.5-2.5% faster than the deep one at batch 16-64 up to kv 8k, 0.3-0.5%
// slower at kv 32k, where a block streams long enough that the waves' seams no longer count
// (docs/decode_fast.md, round 7).
constexpr int64_t kShallowMaxKeysPerBlock = 8192;

// The current device's L2 size in bytes (cached per device; 0 if unknown).
inline int64_t l2_cache_bytes() {
  static std::atomic<int64_t> cache[kMaxCachedDevices];  // 0: not asked yet, else bytes + 1
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return 0;
  const bool cached = device < kMaxCachedDevices;
  if (cached && cache[device].load(std::memory_order_relaxed) > 0) return cache[device].load() - 1;
  int bytes = 0;
  if (cudaDeviceGetAttribute(&bytes, cudaDevAttrL2CacheSize, device) != cudaSuccess) {
    cudaGetLastError();
    bytes = 0;
  }
  if (cached) cache[device].store(int64_t{bytes} + 1, std::memory_order_relaxed);
  return bytes;
}

// The kernels' parameters for problem p on this device.
inline SplitParams split_params(const DecodeProblem& p) {
  SplitParams prm(p);
  const int64_t kv_bytes = 2 * static_cast<int64_t>(p.batch) * p.capacity * p.heads_kv * p.head_dim * kElementBytes;
  prm.evict_first = kv_bytes <= kEvictFirstMaxL2 * l2_cache_bytes();
  prm.prefetch_start = true;
  return prm;
}

// How many clusters of `splits` blocks of the cluster kernel the current device runs at once
// (cudaOccupancyMaxActiveClusters: whole clusters must fit in one GPC), cached per device and
// cluster size; 0 when it cannot launch them. A host query, no stream work.
template <typename Element, int kHeadDim>
int max_active_clusters(int splits) {
  using Cfg = SplitConfig<kHeadDim>;
  static std::atomic<int> cache[kMaxCachedDevices][kMaxClusterSplits + 1];  // 0: not asked yet, else n + 1
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return 0;
  const bool cached = device < kMaxCachedDevices;
  if (cached && cache[device][splits].load(std::memory_order_relaxed) > 0) {
    return cache[device][splits].load(std::memory_order_relaxed) - 1;
  }
  auto kernel = decode_fast_cluster_kernel<Element, kHeadDim, Variant::kGeneral>;  // the variants' occupancy is the same
  int n = 0;
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>(splits));
  config.blockDim = dim3(Cfg::kThreads);
  config.dynamicSmemBytes = Cfg::kClusterSmemBytes;
  cudaLaunchAttribute attribute = {};
  attribute.id = cudaLaunchAttributeClusterDimension;
  attribute.val.clusterDim.x = static_cast<unsigned>(splits);
  attribute.val.clusterDim.y = 1;
  attribute.val.clusterDim.z = 1;
  config.attrs = &attribute;
  config.numAttrs = 1;
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           static_cast<int>(Cfg::kClusterSmemBytes)) != cudaSuccess ||
      cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1) != cudaSuccess ||
      cudaOccupancyMaxActiveClusters(&n, kernel, &config) != cudaSuccess) {
    cudaGetLastError();  // a refused query is an answer (no clusters), not a sticky error
    n = 0;
  }
  if (cached) cache[device][splits].store(n + 1, std::memory_order_relaxed);
  return n;
}

// Whether the cluster kernel runs this problem: sm90, 2..kMaxClusterSplits splits, and clusters
// that fit as many blocks at once as plain blocks would (a cluster must sit in one GPC, so large
// clusters of one-SM blocks can leave SMs idle; then the split kernel + combine is faster).
template <typename Element, int kHeadDim>
bool use_cluster_kernel(const DecodeProblem& p, const DeviceInfo& info, int64_t blocks) {
  using Cfg = SplitConfig<kHeadDim>;
  if (info.sm_arch() < kClusterMinSm || p.num_splits < 2 || p.num_splits > kMaxClusterSplits) return false;
  if (Cfg::kClusterSmemBytes > info.smem_per_block_optin) return false;
  const int64_t clustered = static_cast<int64_t>(max_active_clusters<Element, kHeadDim>(p.num_splits)) * p.num_splits;
  const int64_t plain = static_cast<int64_t>(info.sm_count) * Cfg::kBlocksPerSm;
  if (clustered <= 0 || plain <= 0) return false;
  return (blocks + clustered - 1) / clustered <= (blocks + plain - 1) / plain;
}

// The split kernel with pipeline depth kPipeline.
template <typename Element, int kHeadDim, Variant kVariant, Pipeline kPipeline>
Status launch_split_kernel(const DecodeProblem& p, cudaStream_t stream, int64_t blocks) {
  using Cfg = SplitConfig<kHeadDim, kPipeline>;
  auto kernel = decode_fast_split_kernel<Element, kHeadDim, kVariant, kPipeline>;
  SFA_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(Cfg::kSmemBytes)));
  kernel<<<static_cast<unsigned>(blocks), Cfg::kThreads, Cfg::kSmemBytes, stream>>>(split_params(p));
  return check_launch("decode_fast split kernel");
}

// One variant's launch: the cluster kernel where it applies, else the split kernel, with the
// shallow pipeline when its blocks take several waves and are short (where that pipeline is
// shallower at all).
template <typename Element, int kHeadDim, Variant kVariant>
Status launch_variant(const DecodeProblem& p, const DeviceInfo& info, cudaStream_t stream, int64_t blocks,
                      bool* merged) {
  using Cfg = SplitConfig<kHeadDim>;
  if (use_cluster_kernel<Element, kHeadDim>(p, info, blocks)) {
    auto kernel = decode_fast_cluster_kernel<Element, kHeadDim, kVariant>;
    SFA_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      static_cast<int>(Cfg::kClusterSmemBytes)));
    if (p.num_splits > kMaxPortableClusterSplits) {
      SFA_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
    }
    cudaLaunchConfig_t config = {};
    config.gridDim = dim3(static_cast<unsigned>(blocks));
    config.blockDim = dim3(Cfg::kThreads);
    config.dynamicSmemBytes = Cfg::kClusterSmemBytes;
    config.stream = stream;
    cudaLaunchAttribute attribute = {};
    attribute.id = cudaLaunchAttributeClusterDimension;
    attribute.val.clusterDim.x = static_cast<unsigned>(p.num_splits);
    attribute.val.clusterDim.y = 1;
    attribute.val.clusterDim.z = 1;
    config.attrs = &attribute;
    config.numAttrs = 1;
    SFA_CUDA_TRY(cudaLaunchKernelEx(&config, kernel, split_params(p)));
    *merged = true;
    return check_launch("decode_fast cluster kernel");
  }
  if constexpr (SplitConfig<kHeadDim, Pipeline::kShallow>::kStages < Cfg::kStages) {
    const int64_t keys_per_block = (p.capacity + p.num_splits - 1) / p.num_splits;
    if (blocks > static_cast<int64_t>(info.sm_count) * Cfg::kBlocksPerSm && keys_per_block <= kShallowMaxKeysPerBlock) {
      return launch_split_kernel<Element, kHeadDim, kVariant, Pipeline::kShallow>(p, stream, blocks);
    }
  }
  return launch_split_kernel<Element, kHeadDim, kVariant, Pipeline::kDeep>(p, stream, blocks);
}

template <typename Element, int kHeadDim>
Status launch_split(const DecodeProblem& p, const DeviceInfo& info, cudaStream_t stream, bool* merged) {
  using Cfg = SplitConfig<kHeadDim>;
  *merged = false;
  if (Cfg::kSmemBytes > info.smem_per_block_optin) {
    return Status(StatusCode::kUnsupported,
                  "kernel 'decode_fast': needs " + std::to_string(Cfg::kSmemBytes) +
                      " bytes of shared memory per block, the device allows " +
                      std::to_string(info.smem_per_block_optin));
  }
  const int64_t blocks = static_cast<int64_t>(p.batch) * p.heads_kv * p.num_splits * row_tiles(p);
  if (blocks > INT32_MAX) {
    return Status(StatusCode::kUnsupported, "kernel 'decode_fast': batch * heads_kv * num_splits * row tiles = " +
                                                std::to_string(blocks) + " exceeds the grid limit 2^31 - 1");
  }
  // The common decode step (no softcap; a contiguous cache, or pages of whole tiles) runs a
  // variant without the other layouts' loaders and the softcap code.
  if (!(p.softcap > 0.0f)) {
    if (p.block_table == nullptr) {
      return launch_variant<Element, kHeadDim, Variant::kContiguous>(p, info, stream, blocks, merged);
    }
    if (p.page_size % kKeysPerTile == 0) {
      return launch_variant<Element, kHeadDim, Variant::kTilePages>(p, info, stream, blocks, merged);
    }
  }
  return launch_variant<Element, kHeadDim, Variant::kGeneral>(p, info, stream, blocks, merged);
}

}  // namespace sfa::cuda::decode_fast
