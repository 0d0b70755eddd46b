// Kernel selection and the decode split heuristic. See select.h.
//
// Every kernel's limits are written here once, so supported(), the workspace functions and the
// entry points always agree.
#include "api/select.h"

#include <algorithm>
#include <string>

#include "cpu/cpu_backend.h"
#include "cuda/cuda_backend.h"
#include "cuda/fa2_mma/fa2_mma_config.h"

namespace sfa {
namespace {

Status unsupported(Kernel k, const std::string& why) {
  return Status(StatusCode::kUnsupported, std::string("kernel '") + kernel_name(k) + "': " + why);
}

bool is_half(DType d) { return d == DType::kFloat16 || d == DType::kBFloat16; }

// Head dims the tensor-core prefill kernel is instantiated for.
bool fa2_mma_head_dim(int d) {
  return d == 32 || d == 64 || d == 96 || d == 128 || d == 192 || d == 256;
}
constexpr int kFa2MmaMinSm = 80;

// decode_fast: head dims, the most new tokens per sequence it packs per block.
bool decode_fast_head_dim(int d) { return d == 64 || d == 128 || d == 256; }
constexpr int kDecodeFastMaxQueries = 8;

// Device placement and build checks shared by both entry points.
Status check_placement(Kernel k, Device device) {
  if (is_cpu_kernel(k)) {
    if (device.type != DeviceType::kCPU) return unsupported(k, "runs on CPU tensors; q is on CUDA");
    return Status::ok();
  }
  if (device.type != DeviceType::kCUDA) return unsupported(k, "runs on CUDA tensors; q is on the CPU");
  if (!cuda::has_kernel(k)) return unsupported(k, "not built into this library");
  return Status::ok();
}

Status attention_supports(Kernel k, const AttentionProblem& p, Device device, bool varlen) {
  Status st = check_placement(k, device);
  if (!st) return st;
  switch (k) {
    case Kernel::kCpuReference:
    case Kernel::kCpuFlash:
    case Kernel::kFa1:
    case Kernel::kFa2:
      return Status::ok();
    case Kernel::kStandard:
      if (varlen) return unsupported(k, "dense batches only (use attention(), not attention_varlen())");
      return Status::ok();
    case Kernel::kFa2Mma: {
      if (!is_half(p.dtype)) {
        return unsupported(k, std::string("needs float16 or bfloat16, got ") + dtype_name(p.dtype));
      }
      if (!fa2_mma_head_dim(p.head_dim)) {
        return unsupported(k, "head_dim must be 32, 64, 96, 128, 192 or 256, got " +
                                  std::to_string(p.head_dim));
      }
      cuda::DeviceInfo info;
      if (!(st = cuda::device_info(device.index, &info))) return st;
      if (info.sm_arch() < kFa2MmaMinSm) {
        return unsupported(k, "needs compute capability 8.0 or newer, got " +
                                  std::to_string(info.cc_major) + "." + std::to_string(info.cc_minor));
      }
      // Its tiles need this much shared memory per block (e.g. head_dim 256 on sm86/sm89 does not fit).
      const bool windowed = p.window_left >= 0 || p.window_right >= 0;
      const size_t smem = cuda::fa2_mma_smem_bytes(p.head_dim, windowed, cuda::fa2_mma_sm90_tiles(info.sm_arch()));
      if (smem > info.smem_per_block_optin) {
        return unsupported(k, "head_dim " + std::to_string(p.head_dim) + " needs " + std::to_string(smem) +
                                  " bytes of shared memory per block, the device allows " +
                                  std::to_string(info.smem_per_block_optin));
      }
      return Status::ok();
    }
    default:
      return unsupported(k, "is a decode kernel; call decode()");
  }
}

Status decode_supports(Kernel k, const DecodeProblem& p, Device device) {
  Status st = check_placement(k, device);
  if (!st) return st;
  switch (k) {
    case Kernel::kCpuReference:
    case Kernel::kCpuDecode:
    case Kernel::kDecode:
      return Status::ok();
    case Kernel::kDecodeFast:
      if (!is_half(p.dtype)) {
        return unsupported(k, std::string("needs float16 or bfloat16, got ") + dtype_name(p.dtype));
      }
      if (!decode_fast_head_dim(p.head_dim)) {
        return unsupported(k, "head_dim must be 64, 128 or 256, got " + std::to_string(p.head_dim));
      }
      if (p.seqlen_q > kDecodeFastMaxQueries) {
        return unsupported(k, "at most " + std::to_string(kDecodeFastMaxQueries) +
                                  " new tokens per sequence, got seqlen_q = " + std::to_string(p.seqlen_q));
      }
      return Status::ok();
    default:
      return unsupported(k, "is a prefill kernel; call attention()");
  }
}

// First kernel in `order` that supports the problem; the reason of the last refusal otherwise.
template <typename Supports>
Status first_supported(std::initializer_list<Kernel> order, Supports supports, Kernel* kernel) {
  Status last;
  for (Kernel k : order) {
    last = supports(k);
    if (last) {
      *kernel = k;
      return last;
    }
  }
  return last;
}

}  // namespace

bool is_cpu_kernel(Kernel k) {
  return k == Kernel::kCpuReference || k == Kernel::kCpuFlash || k == Kernel::kCpuDecode;
}

Status select_attention(const AttentionProblem& p, Device device, bool varlen, Kernel requested,
                        Kernel* kernel) {
  auto supports = [&](Kernel k) { return attention_supports(k, p, device, varlen); };
  if (requested != Kernel::kAuto) {
    Status st = supports(requested);
    if (st) *kernel = requested;
    return st;
  }
  if (device.type == DeviceType::kCPU) return first_supported({Kernel::kCpuFlash}, supports, kernel);
  // fa2_mma for half precision on sm80+; the SIMT kernel for float32 and other head dims.
  return first_supported({Kernel::kFa2Mma, Kernel::kFa2}, supports, kernel);
}

Status select_decode(const DecodeProblem& p, Device device, Kernel requested, Kernel* kernel) {
  auto supports = [&](Kernel k) { return decode_supports(k, p, device); };
  if (requested != Kernel::kAuto) {
    Status st = supports(requested);
    if (st) *kernel = requested;
    return st;
  }
  if (device.type == DeviceType::kCPU) return first_supported({Kernel::kCpuDecode}, supports, kernel);
  return first_supported({Kernel::kDecodeFast, Kernel::kDecode}, supports, kernel);
}

namespace {

// decode_fast runs a block per (sequence, KV head, 16 packed query rows, split), one block per
// SM (192 KB of shared memory for head_dim <= 128, 128 KB for 256: cuda/decode_fast/config.h).
// On sm90 up to 8 splits merge inside the launch (thread-block clusters, ~0.5 us); more, or
// before sm90, cost a partial row per query row and a share of the combine kernel (~3 us on an
// H100). With items = blocks of one split:
//   - few items (at most one per kFewItemsSms SMs, e.g. batch 1 with 8 KV heads): splits for
//     about kFewItemsBusy16ths / 16 of the SMs (6 splits for 8 items on 132 SMs: 0.8-3.9% faster
//     than 7 at kv 8k-128k and equal at 1k in four interleaved rounds, once the cluster merge no
//     longer cost a fence; 16 splits, one block per SM, ran 2-21% slower), and from
//     kLongCacheKeys keys on kFewItemsBusy16thsLong / 16 (5 splits for 8 items: 1.1-1.3% faster
//     than 6 at kv 64k-128k in three interleaved sweeps, once a key tile took 25% fewer
//     instructions; at 32k 6 stays 1-2% ahead of 5). None shorter than kMinKeysFewItems keys (a
//     tile per warp). A short cache, where that count leaves warps two tiles or fewer, takes
//     instead the count that gives every warp one tile, up to kMaxOneTileSplits (a portable
//     cluster: the merge stays in the launch): there a block waits for its warp with the most
//     tiles (kv 1k, 8 items: 8 splits 4-9% faster than 6, interleaved timing; kv 2k and up: 6 at
//     least as fast);
//   - kBusyItems to a third of the SMs in items (e.g. batch 1 with 32 KV heads) below
//     kLongCacheKeysOneSplit keys: one split. Those blocks already stream about 2.5 TB/s, and a
//     split launch of that many clusters costs more than the rest of the bandwidth gains (32
//     items: 1 split 13% faster than 2 at kv 4k and 9-10% faster than 4 at 8k, 1% at 16k; at
//     32k 4 splits 1.5% ahead in two interleaved sweeps, equal in later grid runs and 3% ahead
//     on 16-position pages; 4 splits of 32 items merge in the combine kernel, as 32 clusters of
//     4 one-SM blocks do not fit at once);
//   - else: never more blocks than SMs (one wave); enough splits that no block streams more than
//     kMaxKeysPerSplit keys while SMs are idle, and that at least a quarter of the SMs get a
//     block; no split shorter than kMinKeysPerSplit keys (two 16-key tiles per warp).
// Measured on the PERF_TARGETS.md decode grid (split-count sweeps: docs/decode_fast.md).
int decode_fast_num_splits(const DecodeProblem& p, const cuda::DeviceInfo& info) {
  constexpr int64_t kMinKeysPerSplit = 256;
  constexpr int64_t kMaxKeysPerSplit = 2048;
  constexpr int64_t kRowsPerBlock = 16;
  constexpr int64_t kFewItemsSms = 16;
  constexpr int64_t kFewItemsBusy16ths = 6;
  constexpr int64_t kFewItemsBusy16thsLong = 5;
  constexpr int64_t kLongCacheKeys = 65536;
  constexpr int64_t kMinKeysFewItems = 128;
  constexpr int64_t kMaxOneTileSplits = 8;
  constexpr int64_t kBusyItems = 32;
  constexpr int64_t kLongCacheKeysOneSplit = 32768;
  const int64_t rows = static_cast<int64_t>(p.heads / p.heads_kv) * p.seqlen_q;
  const int64_t items = static_cast<int64_t>(p.batch) * p.heads_kv * ((rows + kRowsPerBlock - 1) / kRowsPerBlock);
  const int64_t sms = info.sm_count;
  if (items <= 0 || sms <= 0) return 1;
  if (items * kFewItemsSms <= sms) {
    const int64_t busy16ths = p.capacity >= kLongCacheKeys ? kFewItemsBusy16thsLong : kFewItemsBusy16ths;
    const int64_t wanted = sms * busy16ths / 16 / items;
    const int64_t one_tile = (p.capacity + kMinKeysFewItems - 1) / kMinKeysFewItems;
    if (one_tile > wanted && one_tile <= kMaxOneTileSplits && p.capacity <= 2 * wanted * kMinKeysFewItems) {
      return static_cast<int>(one_tile);
    }
    return static_cast<int>(std::clamp<int64_t>(std::min(wanted, p.capacity / kMinKeysFewItems), 1, kMaxSplits));
  }
  if (items >= kBusyItems && 3 * items <= sms && p.capacity < kLongCacheKeysOneSplit) return 1;
  const int64_t for_length = (p.capacity + kMaxKeysPerSplit - 1) / kMaxKeysPerSplit;
  const int64_t for_occupancy = (sms / 4) / items;
  const int64_t wanted = std::max(for_length, for_occupancy);
  const int64_t limit = std::min(sms / items, p.capacity / kMinKeysPerSplit);
  return static_cast<int>(std::clamp<int64_t>(std::min(wanted, limit), 1, kMaxSplits));
}

}  // namespace

int decode_num_splits(const DecodeProblem& p, Device device, Kernel kernel) {
  if (kernel == Kernel::kCpuReference) return 1;  // the oracle never splits
  if (p.num_splits > 0) return p.num_splits;
  if (kernel == Kernel::kDecodeFast) {
    cuda::DeviceInfo info;
    if (!cuda::device_info(device.index, &info)) return 1;
    return decode_fast_num_splits(p, info);
  }
  // Keys per split: below this a split's fixed cost (its partial output and the merge) outweighs
  // the parallelism it adds.
  constexpr int64_t kMinKeysPerSplit = 256;
  const int64_t max_by_length = std::max<int64_t>(1, p.capacity / kMinKeysPerSplit);
  // Independent work items without splitting, and how many the device runs at once.
  int64_t items = 0, slots = 0;
  if (device.type == DeviceType::kCPU) {
    items = static_cast<int64_t>(p.batch) * p.heads;
    slots = cpu::num_threads();
  } else {
    cuda::DeviceInfo info;
    if (!cuda::device_info(device.index, &info)) return 1;
    // The SIMT kernel runs a block per query head.
    items = static_cast<int64_t>(p.batch) * p.heads;
    slots = 2 * static_cast<int64_t>(info.sm_count);  // two waves keep every SM busy at the tail
  }
  if (items <= 0) return 1;
  const int64_t wanted = (slots + items - 1) / items;
  return static_cast<int>(std::clamp<int64_t>(std::min(wanted, max_by_length), 1, kMaxSplits));
}

size_t attention_workspace_bytes(const AttentionProblem& p, Kernel kernel) {
  if (kernel == Kernel::kStandard) return cuda::standard_workspace_size(p);
  if (kernel == Kernel::kFa1) return cuda::fa1_workspace_size(p);  // O, l, m between K/V blocks
  return 0;
}

namespace {
constexpr size_t kWorkspaceAlign = 256;
size_t align_up(size_t n) { return (n + kWorkspaceAlign - 1) / kWorkspaceAlign * kWorkspaceAlign; }
size_t decode_partial_rows(const DecodeProblem& p, int num_splits) {
  return static_cast<size_t>(num_splits) * p.batch * p.seqlen_q * p.heads;
}
}  // namespace

size_t decode_workspace_bytes(const DecodeProblem& p, int num_splits) {
  if (num_splits <= 1) return 0;
  const size_t rows = decode_partial_rows(p, num_splits);
  return align_up(rows * p.head_dim * sizeof(float)) + align_up(rows * sizeof(float));
}

void bind_decode_workspace(DecodeProblem* p, void* workspace) {
  if (p->num_splits <= 1) {
    p->workspace_out = nullptr;
    p->workspace_lse = nullptr;
    return;
  }
  const size_t rows = decode_partial_rows(*p, p->num_splits);
  char* base = static_cast<char*>(workspace);
  p->workspace_out = reinterpret_cast<float*>(base);
  p->workspace_lse = reinterpret_cast<float*>(base + align_up(rows * p->head_dim * sizeof(float)));
}

}  // namespace sfa
