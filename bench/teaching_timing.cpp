// Timing of the teaching kernels (fa1, fa2, decode) beside standard attention, float32, at the
// seed repository's shapes and larger ones. Prints a markdown table: median time over many runs
// (CUDA events, after warm-up, L2 flushed before every run), TFLOP/s or GB/s of K+V read, and the
// error ||out - ref|| / ||ref|| against the CPU float64 reference where that is quick, else
// against standard attention (a second oracle; its own row is then checked against fa2/decode).
//
// Usage: teaching_timing [--runs N]    (default 30)
// Inputs are random (uniform in [-1, 1)), generated once per 64 MB on the host and repeated on
// the device for the multi-GB caches: the values never are zeros, and timing does not depend on
// them repeating.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "sfa/sfa.h"

namespace {

using sfa::AttentionArgs;
using sfa::DecodeArgs;
using sfa::DType;
using sfa::Kernel;
using sfa::Launch;
using sfa::Status;
using sfa::TensorView;

constexpr size_t kRandomBlockFloats = size_t{16} << 20;  // 64 MB of random floats, repeated
constexpr size_t kFlushBytes = size_t{256} << 20;         // > the 50 MB L2 of an H100
constexpr int kWarmup = 3;
constexpr double kCpuReferenceMaxFlops = 2e9;             // above this, standard is the oracle

void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}
void check(const Status& s, const char* what) {
  if (!s.is_ok()) {
    std::fprintf(stderr, "%s: %s\n", what, s.message().c_str());
    std::exit(1);
  }
}

struct DeviceBuffer {
  void* ptr = nullptr;
  size_t bytes = 0;
  explicit DeviceBuffer(size_t n) : bytes(n) {
    if (n) check_cuda(cudaMalloc(&ptr, n), "cudaMalloc");
  }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  float* f() const { return static_cast<float*>(ptr); }
};

// Fills `floats` floats with the random block, repeated.
void fill_random(float* dst, size_t floats, uint64_t seed) {
  static std::vector<float> block;
  static DeviceBuffer dblock(kRandomBlockFloats * sizeof(float));
  block.resize(kRandomBlockFloats);
  uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
  for (float& x : block) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    x = static_cast<float>((s >> 40) * (2.0 / 16777216.0) - 1.0);
  }
  check_cuda(cudaMemcpy(dblock.ptr, block.data(), kRandomBlockFloats * sizeof(float), cudaMemcpyHostToDevice),
             "upload");
  for (size_t off = 0; off < floats; off += kRandomBlockFloats) {
    const size_t n = std::min(kRandomBlockFloats, floats - off);
    check_cuda(cudaMemcpy(dst + off, dblock.ptr, n * sizeof(float), cudaMemcpyDeviceToDevice), "replicate");
  }
}

std::vector<float> download(const float* src, size_t floats) {
  std::vector<float> h(floats);
  check_cuda(cudaMemcpy(h.data(), src, floats * sizeof(float), cudaMemcpyDeviceToHost), "download");
  return h;
}

double rel_error(const std::vector<float>& got, const std::vector<float>& ref) {
  double d2 = 0, r2 = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = static_cast<double>(got[i]) - ref[i];
    d2 += d * d;
    r2 += static_cast<double>(ref[i]) * ref[i];
  }
  return std::isnan(d2) ? NAN : std::sqrt(d2 / std::max(r2, 1e-300));
}

TensorView view4(void* data, sfa::Device dev, int64_t a, int64_t b, int64_t c, int64_t d) {
  const int64_t shape[4] = {a, b, c, d};
  return sfa::make_tensor(data, DType::kFloat32, dev, 4, shape);
}
TensorView view3(void* data, sfa::Device dev, int64_t a, int64_t b, int64_t c) {
  const int64_t shape[3] = {a, b, c};
  return sfa::make_tensor(data, DType::kFloat32, dev, 3, shape);
}

// Median time in ms of `launch` over `runs` runs, L2 flushed before each.
template <typename F>
double time_ms(F&& launch, int runs) {
  static DeviceBuffer flush(kFlushBytes);
  cudaEvent_t start, stop;
  check_cuda(cudaEventCreate(&start), "event");
  check_cuda(cudaEventCreate(&stop), "event");
  for (int i = 0; i < kWarmup; ++i) launch();
  std::vector<float> ms;
  for (int i = 0; i < runs; ++i) {
    check_cuda(cudaMemsetAsync(flush.ptr, i & 0xff, kFlushBytes), "flush");
    check_cuda(cudaEventRecord(start), "record");
    launch();
    check_cuda(cudaEventRecord(stop), "record");
    check_cuda(cudaEventSynchronize(stop), "sync");
    float t = 0;
    check_cuda(cudaEventElapsedTime(&t, start, stop), "elapsed");
    ms.push_back(t);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

void print_row(const std::string& shape, const char* kernel, double ms, double rate, const char* unit,
               double err, const char* ref) {
  std::printf("| %s | %s | %.4f | %.1f %s | %.2e | %s |\n", shape.c_str(), kernel, ms, rate, unit, err, ref);
  std::fflush(stdout);
}

// Prefill: q, k, v, out [b, s, h, d] float32, lse [b, h, s].
void bench_prefill(int b, int h, int s, int d, int runs) {
  const sfa::Device dev = sfa::Device::cuda(0);
  const size_t n = static_cast<size_t>(b) * s * h * d;
  DeviceBuffer q(n * 4), k(n * 4), v(n * 4), out(n * 4), lse(static_cast<size_t>(b) * h * s * 4);
  fill_random(q.f(), n, 1), fill_random(k.f(), n, 2), fill_random(v.f(), n, 3);
  AttentionArgs a;
  a.q = view4(q.ptr, dev, b, s, h, d), a.k = view4(k.ptr, dev, b, s, h, d), a.v = view4(v.ptr, dev, b, s, h, d);
  a.out = view4(out.ptr, dev, b, s, h, d), a.lse = view3(lse.ptr, dev, b, h, s);
  const double flops = 4.0 * b * h * static_cast<double>(s) * s * d;
  const std::string shape = "prefill b=" + std::to_string(b) + " h=" + std::to_string(h) + " s=" +
                            std::to_string(s) + " d=" + std::to_string(d);

  // The oracle: the CPU float64 reference when cheap, else standard attention on the GPU.
  std::vector<float> ref;
  const bool cpu_ref = flops <= kCpuReferenceMaxFlops;
  if (cpu_ref) {
    std::vector<float> hq = download(q.f(), n), hk = download(k.f(), n), hv = download(v.f(), n), ho(n);
    const sfa::Device cpu = sfa::Device::cpu();
    AttentionArgs c;
    c.q = view4(hq.data(), cpu, b, s, h, d), c.k = view4(hk.data(), cpu, b, s, h, d);
    c.v = view4(hv.data(), cpu, b, s, h, d), c.out = view4(ho.data(), cpu, b, s, h, d);
    c.kernel = Kernel::kCpuReference;
    check(sfa::attention(c), "cpu reference");
    ref = std::move(ho);
  }
  std::vector<float> fa2_out;
  for (Kernel kernel : {Kernel::kStandard, Kernel::kFa2, Kernel::kFa1}) {
    a.kernel = kernel;
    Kernel selected;
    if (!sfa::select_kernel(a, false, &selected).is_ok()) {  // not built into this library
      std::printf("| %s | %s | not built | | | |\n", shape.c_str(), sfa::kernel_name(kernel));
      continue;
    }
    size_t bytes = 0;
    check(sfa::attention_workspace_size(a, false, &bytes), "workspace size");
    DeviceBuffer ws(bytes);
    const Launch launch{nullptr, ws.ptr, bytes};
    check(sfa::attention(a, launch), sfa::kernel_name(kernel));
    check_cuda(cudaDeviceSynchronize(), sfa::kernel_name(kernel));
    std::vector<float> got = download(out.f(), n);
    if (!cpu_ref && kernel == Kernel::kStandard) ref = got;
    if (kernel == Kernel::kFa2) fa2_out = got;
    const double ms = time_ms([&] { check(sfa::attention(a, launch), "attention"); }, runs);
    const bool self = !cpu_ref && kernel == Kernel::kStandard;  // standard's error is measured against fa2 below
    print_row(shape, sfa::kernel_name(kernel), ms, flops / (ms * 1e-3) / 1e12, "TFLOP/s",
              self ? NAN : rel_error(got, ref), cpu_ref ? "cpu-reference" : "standard");
    if (kernel == Kernel::kFa2 && !cpu_ref) {
      std::printf("|   (standard against fa2: %.2e) | | | | | |\n", rel_error(ref, fa2_out));
    }
  }
}

// Decode: one new token per sequence, q/out [b, 1, h, d], contiguous cache [b, kv, h_kv, d] full.
void bench_decode(int b, int h, int h_kv, int kv, int d, int runs) {
  const sfa::Device dev = sfa::Device::cuda(0);
  const size_t nq = static_cast<size_t>(b) * h * d;
  const size_t nkv = static_cast<size_t>(b) * kv * h_kv * d;
  DeviceBuffer q(nq * 4), out(nq * 4), lse(static_cast<size_t>(b) * h * 4), k(nkv * 4), v(nkv * 4);
  fill_random(q.f(), nq, 4), fill_random(k.f(), nkv, 5), fill_random(v.f(), nkv, 6);
  const double bytes = 2.0 * nkv * sizeof(float);
  const std::string shape = "decode b=" + std::to_string(b) + " h=" + std::to_string(h) + "/" +
                            std::to_string(h_kv) + " kv=" + std::to_string(kv) + " d=" + std::to_string(d);
  // Standard attention on the same memory: seqlen_q = 1 against seqlen_k = kv.
  AttentionArgs a;
  a.q = view4(q.ptr, dev, b, 1, h, d), a.k = view4(k.ptr, dev, b, kv, h_kv, d), a.v = view4(v.ptr, dev, b, kv, h_kv, d);
  a.out = view4(out.ptr, dev, b, 1, h, d), a.lse = view3(lse.ptr, dev, b, h, 1);
  a.kernel = Kernel::kStandard;
  DecodeArgs dargs;
  dargs.q = a.q, dargs.k_cache = a.k, dargs.v_cache = a.v, dargs.out = a.out, dargs.lse = a.lse;
  dargs.kernel = Kernel::kDecode;

  std::vector<float> ref;
  const bool cpu_ref = 4.0 * static_cast<double>(nkv) * (h / h_kv) <= kCpuReferenceMaxFlops;
  if (cpu_ref) {
    std::vector<float> hq = download(q.f(), nq), hk = download(k.f(), nkv), hv = download(v.f(), nkv), ho(nq);
    const sfa::Device cpu = sfa::Device::cpu();
    DecodeArgs c;
    c.q = view4(hq.data(), cpu, b, 1, h, d), c.k_cache = view4(hk.data(), cpu, b, kv, h_kv, d);
    c.v_cache = view4(hv.data(), cpu, b, kv, h_kv, d), c.out = view4(ho.data(), cpu, b, 1, h, d);
    c.kernel = Kernel::kCpuReference;
    check(sfa::decode(c), "cpu reference");
    ref = std::move(ho);
  }

  Kernel selected;
  if (!sfa::select_kernel(a, false, &selected).is_ok() || !sfa::select_kernel(dargs, &selected).is_ok()) {
    std::printf("| %s | standard, decode | not built | | | |\n", shape.c_str());
    return;
  }
  size_t sbytes = 0, dbytes = 0;
  check(sfa::attention_workspace_size(a, false, &sbytes), "workspace size");
  check(sfa::decode_workspace_size(dargs, &dbytes), "workspace size");
  DeviceBuffer sws(sbytes), dws(dbytes);
  const Launch slaunch{nullptr, sws.ptr, sbytes}, dlaunch{nullptr, dws.ptr, dbytes};

  check(sfa::attention(a, slaunch), "standard");
  check_cuda(cudaDeviceSynchronize(), "standard");
  const std::vector<float> std_out = download(out.f(), nq);
  check(sfa::decode(dargs, dlaunch), "decode");
  check_cuda(cudaDeviceSynchronize(), "decode");
  const std::vector<float> dec_out = download(out.f(), nq);
  if (!cpu_ref) ref = std_out;

  const double t_std = time_ms([&] { check(sfa::attention(a, slaunch), "standard"); }, runs);
  const double t_dec = time_ms([&] { check(sfa::decode(dargs, dlaunch), "decode"); }, runs);
  const char* ref_name = cpu_ref ? "cpu-reference" : "standard";
  print_row(shape, "standard", t_std, bytes / (t_std * 1e-3) / 1e9, "GB/s",
            cpu_ref ? rel_error(std_out, ref) : rel_error(std_out, dec_out), cpu_ref ? ref_name : "decode");
  print_row(shape, "decode", t_dec, bytes / (t_dec * 1e-3) / 1e9, "GB/s", rel_error(dec_out, ref), ref_name);
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 30;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--runs") == 0 && i + 1 < argc) runs = std::max(1, std::atoi(argv[++i]));
  }
  if (sfa::cuda_device_count() == 0) {
    std::printf("teaching_timing: no CUDA device, nothing timed\n");
    return 0;
  }
  cudaDeviceProp prop;
  check_cuda(cudaGetDeviceProperties(&prop, 0), "device properties");
  std::printf("device: %s, %d SMs; float32; median of %d runs after %d warm-up, L2 flushed\n\n", prop.name,
              prop.multiProcessorCount, runs, kWarmup);
  std::printf("| shape | kernel | ms | rate | error | against |\n|---|---|---|---|---|---|\n");
  bench_prefill(16, 12, 64, 64, runs);  // the seed's prefill shape
  bench_prefill(16, 12, 1024, 64, runs);
  bench_prefill(16, 12, 4096, 64, std::max(1, runs / 3));
  bench_decode(8, 8, 8, 512, 64, runs);  // the seed's decode shape
  for (int kv : {4096, 16384, 65536}) bench_decode(8, 32, 32, kv, 128, runs);
  return 0;
}
