// fa2_mma tile tuning and timing: the standard benchmark shapes (seqlen 512..16k, batch =
// 16384 / seqlen, heads = 2048 / head_dim, head_dim 64/128/256, causal and not, bf16, plus fp16 at
// 128) for the shipped configuration (through sfa::attention) and for alternative tile shapes
// compiled into this program, each timed with CUDA events (median of many runs after warm-up).
//
// Prints one line per measurement:
//   RESULT <variant> <dtype> <head_dim> <causal> <seqlen> <ms> <TFLOP/s> <max |out - shipped|>
// bench/fa2_mma_compare.py runs it next to PyTorch's flash and cuDNN attention.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "api/validate.h"
#include "cuda/fa2_mma/fa2_mma_kernel.cuh"
#include "sfa/sfa.h"

namespace {

using namespace sfa;
using namespace sfa::cuda;

constexpr int kTokens = 16384;   // batch * seqlen
constexpr int kHidden = 2048;    // heads * head_dim
constexpr int kWarmup = 3;
constexpr int kRepeats = 15;

#define CHECK_CUDA(call)                                                              \
  do {                                                                                \
    cudaError_t e_ = (call);                                                          \
    if (e_ != cudaSuccess) {                                                          \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
      std::exit(1);                                                                   \
    }                                                                                 \
  } while (0)

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

// Largest |a - b| over two bf16/fp16 buffers (as float).
template <typename T>
__global__ void max_abs_diff(const T* a, const T* b, int64_t n, float* out) {
  float m = 0.0f;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    m = fmaxf(m, fabsf(static_cast<float>(a[i]) - static_cast<float>(b[i])));
  }
  atomicMax(reinterpret_cast<int*>(out), __float_as_int(m));  // non-negative floats order as ints
}

struct Variant {
  std::string name;
  DType dtype;
  int head_dim;
  bool causal;
  std::function<Status(const AttentionProblem&, const DeviceInfo&, cudaStream_t)> launch;
};

// Name: <Br>x<Bc>x<warps>w[p (warp pairs)]a<fragments ahead>[r (O *= alpha always)][g<heads per
// launch group>]. group_heads 0 is the automatic launch order, 1 head after head (each head's
// blocks heaviest first), -1 one group of every head.
template <typename T, int kD, bool kCausal, int kM, int kN, int kW, int kWN, int kAhead, bool kSkip = true>
Variant variant(DType dtype, int group_heads = 0) {
  std::string name = std::to_string(kM) + "x" + std::to_string(kN) + "x" + std::to_string(kW) + "w" +
                     (kWN > 1 ? "p" : "") + "a" + std::to_string(kAhead) + (kSkip ? "" : "r");
  if (group_heads != 0) name += group_heads < 0 ? "gall" : "g" + std::to_string(group_heads);
  using Tr = Fa2MmaTraits<T, kD, kCausal, kM, kN, kW, kWN, kAhead, kSkip>;
  return {name, dtype, kD, kCausal, [group_heads](const AttentionProblem& p, const DeviceInfo& info, cudaStream_t s) {
            return launch_fa2_mma_tiles<Tr>(p, info, s, group_heads < 0 ? p.batch * p.heads : group_heads);
          }};
}

std::vector<Variant> variants() {
  using bf16 = __nv_bfloat16;
  const DType b = DType::kBFloat16;
  std::vector<Variant> v;
  // launch order (the shipped tiles): head after head, one group of every head
  v.push_back(variant<bf16, 64, true, 128, 64, 4, 1, 2>(b, 1));
  v.push_back(variant<bf16, 64, true, 128, 64, 4, 1, 2>(b, -1));
  v.push_back(variant<bf16, 128, true, 128, 64, 4, 1, 2>(b, 1));
  v.push_back(variant<bf16, 128, true, 128, 64, 4, 1, 2>(b, -1));
  v.push_back(variant<bf16, 256, true, 64, 64, 4, 2, 2>(b, 1));
  v.push_back(variant<bf16, 256, true, 64, 64, 4, 2, 2>(b, -1));
  // O *= alpha on every key block (no skip when no row maximum moved)
  v.push_back(variant<bf16, 64, false, 128, 64, 4, 1, 2, false>(b));
  v.push_back(variant<bf16, 128, false, 128, 64, 4, 1, 2, false>(b));
  v.push_back(variant<bf16, 256, false, 64, 64, 4, 2, 2, false>(b));
  // fragment look-ahead at head_dim 128
  v.push_back(variant<bf16, 128, false, 128, 64, 4, 1, 0>(b));
  v.push_back(variant<bf16, 128, false, 128, 64, 4, 1, 1>(b));
  // head_dim 256: warp pairs on 128 x 64 (one block per SM)
  v.push_back(variant<bf16, 256, false, 128, 64, 8, 2, 2>(b));
  v.push_back(variant<bf16, 256, true, 128, 64, 8, 2, 2>(b));
  return v;
}

double median(std::vector<float> x) {
  std::sort(x.begin(), x.end());
  return x[x.size() / 2];
}

// Median milliseconds of `fn` over kRepeats runs after kWarmup.
double time_ms(const std::function<void()>& fn) {
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  for (int i = 0; i < kWarmup; ++i) fn();
  std::vector<float> ms;
  for (int i = 0; i < kRepeats; ++i) {
    CHECK_CUDA(cudaEventRecord(start));
    fn();
    CHECK_CUDA(cudaEventRecord(stop));
    CHECK_CUDA(cudaEventSynchronize(stop));
    float t = 0;
    CHECK_CUDA(cudaEventElapsedTime(&t, start, stop));
    ms.push_back(t);
  }
  CHECK_CUDA(cudaEventDestroy(start));
  CHECK_CUDA(cudaEventDestroy(stop));
  return median(ms);
}

}  // namespace

int main(int argc, char** argv) {
  // Optional filter: only the configurations listed in argv[1] as dtype:head_dim, comma separated
  // (e.g. "bf16:128,fp16:128"); "novariants" as argv[2].
  std::string configs_wanted = argc > 1 ? argv[1] : "bf16:64,bf16:128,bf16:256,fp16:128";
  const bool with_variants = !(argc > 2 && std::strcmp(argv[2], "novariants") == 0);
  const int64_t n = int64_t(kTokens) * kHidden;
  void *q, *k, *v, *out, *ref;
  float *lse, *diff;
  for (void** p : {&q, &k, &v, &out, &ref}) CHECK_CUDA(cudaMalloc(p, n * 2));
  CHECK_CUDA(cudaMalloc(&lse, sizeof(float) * kTokens * 256));
  CHECK_CUDA(cudaMalloc(&diff, sizeof(float)));
  DeviceInfo info;
  if (!device_info(0, &info)) return 1;
  const std::vector<Variant> all = with_variants ? variants() : std::vector<Variant>{};

  struct Config { DType dtype; int d; };
  const Config configs[] = {{DType::kBFloat16, 64}, {DType::kBFloat16, 128}, {DType::kBFloat16, 256},
                            {DType::kFloat16, 128}};
  for (const Config& cfg : configs) {
    const bool bf = cfg.dtype == DType::kBFloat16;
    if (configs_wanted.find(std::string(bf ? "bf16:" : "fp16:") + std::to_string(cfg.d)) == std::string::npos) continue;
    for (void* p : {q, k, v}) {
      if (bf) fill_random<<<1024, 256>>>(static_cast<__nv_bfloat16*>(p), n, 1234u + (p == k) + 2 * (p == v));
      else fill_random<<<1024, 256>>>(static_cast<__half*>(p), n, 1234u + (p == k) + 2 * (p == v));
    }
    CHECK_CUDA(cudaGetLastError());
    for (bool causal : {false, true}) {
      for (int seqlen = 512; seqlen <= 16384; seqlen *= 2) {
        const int batch = kTokens / seqlen, heads = kHidden / cfg.d;
        const int64_t shape[4] = {batch, seqlen, heads, cfg.d};
        const int64_t lse_shape[3] = {batch, heads, seqlen};
        AttentionArgs a;
        a.q = make_tensor(q, cfg.dtype, Device::cuda(0), 4, shape);
        a.k = make_tensor(k, cfg.dtype, Device::cuda(0), 4, shape);
        a.v = make_tensor(v, cfg.dtype, Device::cuda(0), 4, shape);
        a.out = make_tensor(ref, cfg.dtype, Device::cuda(0), 4, shape);
        a.lse = make_tensor(lse, DType::kFloat32, Device::cuda(0), 3, lse_shape);
        a.causal = causal;
        a.kernel = Kernel::kFa2Mma;
        const double flops = 4.0 * batch * heads * double(seqlen) * seqlen * cfg.d * (causal ? 0.5 : 1.0);
        const double ms = time_ms([&] {
          Status st = attention(a);
          if (!st) { std::fprintf(stderr, "attention: %s\n", st.message().c_str()); std::exit(1); }
        });
        CHECK_CUDA(cudaDeviceSynchronize());
        std::printf("RESULT shipped %s %d %d %d %.4f %.1f 0\n", bf ? "bf16" : "fp16", cfg.d, causal, seqlen, ms,
                    flops / ms * 1e-9);
        AttentionProblem prob;
        Device dev;
        a.out.data = out;
        if (!validate_attention(a, false, &prob, &dev)) return 1;
        for (const Variant& var : all) {
          if (var.dtype != cfg.dtype || var.head_dim != cfg.d || var.causal != causal) continue;
          const double vms = time_ms([&] {
            Status st = var.launch(prob, info, nullptr);
            if (!st) { std::fprintf(stderr, "%s: %s\n", var.name.c_str(), st.message().c_str()); std::exit(1); }
          });
          CHECK_CUDA(cudaMemset(diff, 0, sizeof(float)));
          max_abs_diff<<<1024, 256>>>(static_cast<const __nv_bfloat16*>(out), static_cast<const __nv_bfloat16*>(ref),
                                      int64_t(batch) * seqlen * heads * cfg.d, diff);
          float h_diff = 0;
          CHECK_CUDA(cudaMemcpy(&h_diff, diff, sizeof(float), cudaMemcpyDeviceToHost));
          std::printf("RESULT %s %s %d %d %d %.4f %.1f %.3g\n", var.name.c_str(), bf ? "bf16" : "fp16", cfg.d, causal,
                      seqlen, vms, flops / vms * 1e-9, h_diff);
        }
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
