// fa2_mma timing server for bench/fa2_mma_compare.py: the shipped configuration (through
// sfa::attention) and alternative tile configurations compiled into this program, timed on
// request so that the caller can interleave them with PyTorch's kernels shape by shape.
//
// Standard shapes: batch = 16384 / seqlen, heads = 2048 / head_dim, BSHD, inputs uniform in
// [-1, 1). Commands, one per line on stdin, each answered by one line on stdout:
//   shape <bf16|fp16> <head_dim> <causal 0|1> <seqlen> [<batch> <heads>: instead of the standard
//         ones, when the inputs fit the buffers]
//       -> "kernels shipped <variant>..." (fills the inputs, runs each kernel once)
//   time <calls>
//       -> "times <ms>..." one sample per kernel in the "kernels" order: CUDA events around
//          <calls> back-to-back launches queued behind a short spin kernel (the GPU never waits
//          for the host inside the sample), divided by <calls>
//   diff
//       -> "diffs <max |out - shipped out|>..." for the kernels after "shipped"
//   phases
//       -> one line per probed variant of the shape: "phases <name> blocks <n> span_us <kernel>
//          resident <mean blocks resident per SM> start_us <to the first tiles> loop_us <key loop>
//          store_us <epilogue> block_us <whole block> pair_skew_us <median start distance to the
//          nearest other block on the SM> start_first_wave_us <start of the blocks entered within
//          1 us of the first> (<their count>) start_later_us <start of the others>", then "end"
//          (block means; each block's phases stamped by its thread 0: BlockPhase)
//   quit
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "check_cuda.h"

#include "api/validate.h"
#include "cuda/fa2_mma/fa2_mma_kernel.cuh"
#include "cuda/fa2_mma/fa2_mma_sm90.cuh"
#include "sfa/sfa.h"

namespace {

using namespace sfa;
using namespace sfa::cuda;

constexpr int kTokens = 16384;  // batch * seqlen
constexpr int kHidden = 2048;   // heads * head_dim
constexpr long long kSpinCycles = 200000;  // about 0.1 ms: covers the host's launch of the sample

// Uniform values in [-1, 1) from a hash of the index, rounded to the element type.
template <typename T>
__global__ void fill_random(T* x, int64_t n, uint32_t seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    x[i] = static_cast<T>(static_cast<float>(h & 0xffff) / 32768.0f - 1.0f);
  }
}

// Largest |a - b| over two 16-bit float buffers (as float).
template <typename T>
__global__ void max_abs_diff(const T* a, const T* b, int64_t n, float* out) {
  float m = 0.0f;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    m = fmaxf(m, fabsf(static_cast<float>(a[i]) - static_cast<float>(b[i])));
  }
  atomicMax(reinterpret_cast<int*>(out), __float_as_int(m));  // non-negative floats order as ints
}

// Keeps the GPU busy while the host queues a sample's launches.
__global__ void spin(long long cycles) {
  const long long start = clock64();
  while (clock64() - start < cycles) {
  }
}

// Per block: globaltimer and clock64 at each BlockPhase, and the SM.
constexpr int kPhases = 4;
constexpr int kStampWords = 2 * kPhases + 1;
constexpr int kMaxStampedBlocks = 65536;  // the standard shapes launch at most 4096
__device__ unsigned long long* g_phase_stamps;

struct PhaseProbe {
  static std::string tag() { return "probe"; }
  __device__ static void mark(BlockPhase phase) {
    if (threadIdx.x != 0) return;
    unsigned long long t;
    unsigned sm;
    asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(t));
    unsigned long long* s = g_phase_stamps + size_t(blockIdx.x) * kStampWords;
    s[int(phase)] = t;
    s[kPhases + int(phase)] = clock64();
    if (phase == BlockPhase::kStart) {
      asm volatile("mov.u32 %0, %%smid;\n" : "=r"(sm));
      s[2 * kPhases] = sm;
    }
  }
};

template <class Probe>
std::string probe_tag() {
  if constexpr (std::is_same_v<Probe, NoPhaseProbe>) {
    return "";
  } else {
    return Probe::tag();
  }
}

struct Variant {
  std::string name;
  DType dtype;
  int head_dim;
  bool causal;
  std::function<Status(const AttentionProblem&, const DeviceInfo&, cudaStream_t)> launch;
};

// Name: <Br>x<Bc>x<warps>w[p (warp pairs)]a<fragments ahead>[s (state in shared memory)][g<heads
// per launch group>]. group_heads 0 is the automatic launch order, -1 one group of every head.
// [v1: V of the first key block copied with Q and K | v0: in the first step] [d: output stored
// directly from the registers] [probe: phases stamped] [m<blocks per SM>] [k<K / V stages>] [t<S by
// 16-row tile: 0 / 1>].
template <typename T, int kD, bool kCausal, int kM, int kN, int kW, int kWN, int kAhead, bool kState, bool kPrologueV,
          bool kStaged = true, class Probe = NoPhaseProbe, int kMinBlocks = 0, int kStages = 0, int kSByTile = -1>
Variant variant(DType dtype, int group_heads = 0) {
  std::string name = std::to_string(kM) + "x" + std::to_string(kN) + "x" + std::to_string(kW) + "w" +
                     (kWN > 1 ? "p" : "") + "a" + std::to_string(kAhead) + (kState ? "s" : "") +
                     (kPrologueV ? "v1" : "v0") + (kStaged ? "" : "d") +
                     probe_tag<Probe>() + (kMinBlocks > 0 ? "m" + std::to_string(kMinBlocks) : "") +
                     (kStages > 0 ? "k" + std::to_string(kStages) : "") +
                     (kSByTile >= 0 ? "t" + std::to_string(kSByTile) : "");
  if (group_heads != 0) name += group_heads < 0 ? "gall" : "g" + std::to_string(group_heads);
  using Tr = Fa2MmaTraits<T, kD, kCausal, kM, kN, kW, kWN, kAhead, kState, kPrologueV, kStaged, Probe, kMinBlocks, kStages,
                           kSByTile>;
  return {name, dtype, kD, kCausal,
          [group_heads](const AttentionProblem& p, const DeviceInfo& info, cudaStream_t s) {
            return launch_fa2_mma_tiles<Tr>(p, info, s, group_heads < 0 ? p.batch * p.heads : group_heads);
          }};
}

// The wgmma kernel (sm_90a, fa2_mma_sm90.cuh) with another launch bound or launch order:
// wg<blocks per SM the launch bound asks for>[g<heads per launch group> | gall].
template <typename T, int kD, bool kCausal, int kMinBlocks>
Variant wgmma_variant(DType dtype, int group_heads = 0) {
  std::string name = "wg" + std::to_string(kMinBlocks);
  if (group_heads != 0) name += group_heads < 0 ? "gall" : "g" + std::to_string(group_heads);
  return {name, dtype, kD, kCausal, [group_heads](const AttentionProblem& p, const DeviceInfo& info, cudaStream_t s) {
            return launch_fa2_wgmma_tiles<Fa2WgmmaTraits<T, kD, kCausal, kMinBlocks>>(
                p, info, s, group_heads < 0 ? p.batch * p.heads : group_heads);
          }};
}

// The mma.sync tiles the sm_90a binary would run without the wgmma kernel ("mma").
template <typename T, int kD, bool kCausal>
Variant mma_sync_variant(DType dtype) {
  return {"mma", dtype, kD, kCausal, [](const AttentionProblem& p, const DeviceInfo& info, cudaStream_t s) {
            return launch_fa2_mma_tiles<Fa2MmaTraits<T, kD, kCausal>, Fa2MmaTraitsSm90<T, kD, kCausal>>(p, info, s);
          }};
}

std::vector<Variant> variants() {
  using bf16 = __nv_bfloat16;
  const DType b = DType::kBFloat16;
  std::vector<Variant> v;
  // The mma.sync tiles the wgmma kernel replaced in the sm_90a binary (the other binaries run them).
  v.push_back(mma_sync_variant<bf16, 64, false>(b));
  v.push_back(mma_sync_variant<bf16, 64, true>(b));
  v.push_back(mma_sync_variant<bf16, 128, false>(b));
  v.push_back(mma_sync_variant<bf16, 128, true>(b));
  v.push_back(mma_sync_variant<bf16, 256, false>(b));
  v.push_back(mma_sync_variant<bf16, 256, true>(b));
  // Launch order with a causal mask (the kernel groups heads from 8k rows on): one group of every
  // head; head after head.
  v.push_back(wgmma_variant<bf16, 64, true, 4>(b, -1));
  v.push_back(wgmma_variant<bf16, 128, true, 3>(b, -1));
  v.push_back(wgmma_variant<bf16, 256, true, 2>(b, -1));
  v.push_back(wgmma_variant<bf16, 256, true, 2>(b, 1));
  return v;
}

// The shipped tiles with their block phases stamped (the "phases" command).
std::vector<Variant> probes() {
  using bf16 = __nv_bfloat16;
  const DType b = DType::kBFloat16;
  std::vector<Variant> v;
  v.push_back(variant<bf16, 64, false, 128, 64, 4, 1, 2, false, true, true, PhaseProbe>(b));
  v.push_back(variant<bf16, 256, false, 64, 64, 4, 2, 2, true, true, true, PhaseProbe>(b));
  v.push_back(variant<bf16, 256, true, 64, 64, 4, 2, 2, false, false, true, PhaseProbe>(b));
  return v;
}

// The inputs and the kernels of the current shape.
class Server {
 public:
  Server() {
    const int64_t n = int64_t(kTokens) * kHidden;
    for (void** p : {&q_, &k_, &v_, &out_, &ref_}) CHECK_CUDA(cudaMalloc(p, n * 2));
    CHECK_CUDA(cudaMalloc(&lse_, sizeof(float) * kTokens * kHidden));
    CHECK_CUDA(cudaMalloc(&diff_, sizeof(float)));
    CHECK_CUDA(cudaEventCreate(&start_));
    CHECK_CUDA(cudaEventCreate(&stop_));
    if (!device_info(0, &info_)) std::exit(1);
    all_ = variants();
    probes_ = probes();
  }

  std::string shape(const std::string& dtype, int d, bool causal, int seqlen, int batch = 0, int heads = 0) {
    const DType t = dtype == "bf16" ? DType::kBFloat16 : DType::kFloat16;
    batch_ = kTokens / seqlen;
    heads_ = kHidden / d;
    if (batch > 0 && heads > 0 && int64_t(batch) * seqlen * heads * d <= int64_t(kTokens) * kHidden) {
      batch_ = batch;
      heads_ = heads;
    }
    elems_ = int64_t(batch_) * seqlen * heads_ * d;
    for (void* p : {q_, k_, v_}) {
      const uint32_t seed = 1234u + (p == k_) + 2 * (p == v_);
      if (t == DType::kBFloat16) fill_random<<<1024, 256>>>(static_cast<__nv_bfloat16*>(p), elems_, seed);
      else fill_random<<<1024, 256>>>(static_cast<__half*>(p), elems_, seed);
    }
    CHECK_CUDA(cudaGetLastError());
    shape_[0] = batch_;
    shape_[1] = seqlen;
    shape_[2] = heads_;
    shape_[3] = d;
    lse_shape_[0] = batch_;
    lse_shape_[1] = heads_;
    lse_shape_[2] = seqlen;
    args_ = AttentionArgs();
    args_.q = make_tensor(q_, t, Device::cuda(0), 4, shape_);
    args_.k = make_tensor(k_, t, Device::cuda(0), 4, shape_);
    args_.v = make_tensor(v_, t, Device::cuda(0), 4, shape_);
    args_.out = make_tensor(ref_, t, Device::cuda(0), 4, shape_);
    args_.lse = make_tensor(lse_, DType::kFloat32, Device::cuda(0), 3, lse_shape_);
    args_.causal = causal;
    args_.kernel = Kernel::kFa2Mma;
    AttentionArgs a = args_;
    a.out.data = out_;
    Device dev;
    if (!validate_attention(a, false, &prob_, &dev)) std::exit(1);
    here_.clear();
    std::string reply = "kernels shipped";
    for (const Variant& var : all_) {
      if (var.dtype == t && var.head_dim == d && var.causal == causal) {
        here_.push_back(&var);
        reply += " " + var.name;
      }
    }
    for (int i = 0; i <= int(here_.size()); ++i) run(i);
    CHECK_CUDA(cudaDeviceSynchronize());
    return reply;
  }

  std::string phases() {
    std::string reply;
    for (const Variant& var : probes_) {
      if (var.dtype != args_.q.dtype || var.head_dim != shape_[3] || var.causal != args_.causal) continue;
      reply += phase_summary(var) + "\n";
    }
    return reply + "end";
  }

  std::string time(int calls) {
    std::string reply = "times";
    for (int i = 0; i <= int(here_.size()); ++i) {
      spin<<<1, 1>>>(kSpinCycles);
      CHECK_CUDA(cudaEventRecord(start_));
      for (int c = 0; c < calls; ++c) run(i);
      CHECK_CUDA(cudaEventRecord(stop_));
      CHECK_CUDA(cudaEventSynchronize(stop_));
      float ms = 0;
      CHECK_CUDA(cudaEventElapsedTime(&ms, start_, stop_));
      reply += " " + std::to_string(ms / calls);
    }
    return reply;
  }

  std::string diff() {
    std::string reply = "diffs";
    for (int i = 1; i <= int(here_.size()); ++i) {
      run(i);
      CHECK_CUDA(cudaMemset(diff_, 0, sizeof(float)));
      if (args_.q.dtype == DType::kBFloat16) {
        max_abs_diff<<<1024, 256>>>(static_cast<const __nv_bfloat16*>(out_), static_cast<const __nv_bfloat16*>(ref_),
                                    elems_, diff_);
      } else {
        max_abs_diff<<<1024, 256>>>(static_cast<const __half*>(out_), static_cast<const __half*>(ref_), elems_, diff_);
      }
      float h = 0;
      CHECK_CUDA(cudaMemcpy(&h, diff_, sizeof(float), cudaMemcpyDeviceToHost));
      reply += " " + std::to_string(h);
    }
    return reply;
  }

 private:
  // One launch of a probed variant; block means of its phases (clock64 differences, in
  // microseconds at the rate globaltimer gives over all blocks).
  std::string phase_summary(const Variant& var) {
    const size_t words = size_t(kStampWords) * kMaxStampedBlocks;
    if (int64_t(prob_.batch) * prob_.heads * ((prob_.seqlen_q + 63) / 64) > kMaxStampedBlocks) return "phases too many blocks";
    if (stamps_ == nullptr) CHECK_CUDA(cudaMalloc(&stamps_, sizeof(unsigned long long) * words));
    CHECK_CUDA(cudaMemcpyToSymbol(g_phase_stamps, &stamps_, sizeof(stamps_)));
    CHECK_CUDA(cudaMemset(stamps_, 0, sizeof(unsigned long long) * words));
    var.launch(prob_, info_, nullptr);
    CHECK_CUDA(cudaDeviceSynchronize());
    std::vector<unsigned long long> h(words);
    CHECK_CUDA(cudaMemcpy(h.data(), stamps_, sizeof(unsigned long long) * h.size(), cudaMemcpyDeviceToHost));
    int n = 0;
    unsigned long long t_min = ~0ull, t_max = 0;
    double cyc[3] = {}, cyc_all = 0, ns_all = 0;
    std::vector<std::vector<unsigned long long>> starts(info_.sm_count > 0 ? info_.sm_count : 1024);
    for (int i = 0; i < kMaxStampedBlocks; ++i) {
      const unsigned long long* s = &h[size_t(i) * kStampWords];
      if (s[3] == 0) continue;  // not launched (or left before its stores)
      ++n;
      t_min = std::min(t_min, s[0]);
      t_max = std::max(t_max, s[3]);
      for (int k = 0; k < 3; ++k) cyc[k] += double(s[kPhases + k + 1] - s[kPhases + k]);
      cyc_all += double(s[kPhases + 3] - s[kPhases]);
      ns_all += double(s[3] - s[0]);
      if (s[2 * kPhases] < starts.size()) starts[s[2 * kPhases]].push_back(s[0]);
    }
    if (n == 0) return "phases " + var.name + " none";
    const double ns_per_cycle = ns_all / cyc_all;
    // The start of the first wave's blocks (entered within 1 us of the first) and of the later
    // ones, which begin while other blocks run.
    double first_cyc = 0, later_cyc = 0;
    int first_n = 0;
    for (int i = 0; i < kMaxStampedBlocks; ++i) {
      const unsigned long long* s = &h[size_t(i) * kStampWords];
      if (s[3] == 0) continue;
      const double c = double(s[kPhases + 1] - s[kPhases]);
      if (s[0] - t_min < 1000) {
        first_cyc += c;
        ++first_n;
      } else {
        later_cyc += c;
      }
    }
    std::vector<double> skew;
    for (auto& sm : starts) {
      std::sort(sm.begin(), sm.end());
      for (size_t i = 0; i < sm.size(); ++i) {
        double best = 1e30;
        if (i > 0) best = std::min(best, double(sm[i] - sm[i - 1]));
        if (i + 1 < sm.size()) best = std::min(best, double(sm[i + 1] - sm[i]));
        if (best < 1e30) skew.push_back(best);
      }
    }
    std::sort(skew.begin(), skew.end());
    const double span = double(t_max - t_min);
    char buf[640];
    std::snprintf(buf, sizeof(buf),
                  "phases %s blocks %d span_us %.1f resident %.2f start_us %.2f loop_us %.2f store_us %.2f "
                  "block_us %.2f pair_skew_us %.2f start_first_wave_us %.2f (%d) start_later_us %.2f",
                  var.name.c_str(), n, span / 1e3, ns_all / (span * info_.sm_count), cyc[0] / n * ns_per_cycle / 1e3,
                  cyc[1] / n * ns_per_cycle / 1e3, cyc[2] / n * ns_per_cycle / 1e3, ns_all / n / 1e3,
                  skew.empty() ? 0.0 : skew[skew.size() / 2] / 1e3, first_n ? first_cyc / first_n * ns_per_cycle / 1e3 : 0.0,
                  first_n, n > first_n ? later_cyc / (n - first_n) * ns_per_cycle / 1e3 : 0.0);
    return buf;
  }

  // Kernel 0 is the shipped configuration through the public API (into ref_), i > 0 variant i - 1
  // (into out_).
  void run(int i) {
    const Status st = i == 0 ? attention(args_) : here_[i - 1]->launch(prob_, info_, nullptr);
    if (!st) {
      std::fprintf(stderr, "kernel %d: %s\n", i, st.message().c_str());
      std::exit(1);
    }
  }

  void *q_, *k_, *v_, *out_, *ref_;
  float *lse_, *diff_;
  cudaEvent_t start_, stop_;
  DeviceInfo info_;
  std::vector<Variant> all_;
  std::vector<const Variant*> here_;
  std::vector<Variant> probes_;
  unsigned long long* stamps_ = nullptr;
  int batch_ = 0, heads_ = 0;
  int64_t elems_ = 0;
  int64_t shape_[4] = {}, lse_shape_[3] = {};
  AttentionArgs args_;
  AttentionProblem prob_;
};

}  // namespace

int main() {
  Server server;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    std::string reply;
    if (cmd == "shape") {
      std::string dtype;
      int d = 0, causal = 0, seqlen = 0, batch = 0, heads = 0;
      in >> dtype >> d >> causal >> seqlen;
      if (!(in >> batch >> heads)) batch = heads = 0;
      reply = server.shape(dtype, d, causal != 0, seqlen, batch, heads);
    } else if (cmd == "time") {
      int calls = 1;
      in >> calls;
      reply = server.time(calls);
    } else if (cmd == "phases") {
      reply = server.phases();
    } else if (cmd == "diff") {
      reply = server.diff();
    } else if (cmd == "quit") {
      break;
    } else {
      reply = "error unknown command";
    }
    std::cout << reply << std::endl;
  }
  return 0;
}
