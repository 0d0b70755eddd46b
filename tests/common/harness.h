// Internal to sfa_testing: random numbers, tensor layouts seen as (row, head, dim), the error
// accumulator and the per-kernel workspace shared by AttentionRun and DecodeRun.
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "buffer.h"
#include "testing.h"

namespace sfa::testing::detail {

// splitmix64: small, fast, and the same stream on every compiler (std distributions are not).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next();
  double uniform();             // [0, 1)
  double normal();              // N(0, 1), Box-Muller
  // An input value: uniform on [-sqrt(3), sqrt(3)), mean 0 and variance 1 like N(0, 1) (the dot
  // products the kernels see are near-normal either way) at a fraction of the cost.
  float input();
  int uniform_int(int lo, int hi);  // [lo, hi]
  template <typename T>
  void shuffle(std::vector<T>* v) {
    for (size_t i = v->size(); i > 1; --i) {
      std::swap((*v)[i - 1], (*v)[static_cast<size_t>(next() % i)]);
    }
  }

 private:
  uint64_t state_;
};

// A tensor of rank 3 [rows, heads, dim] or rank 4 [batch, seqlen, heads, dim], addressed by
// (row, head, dim) where row = b * seqlen + s for rank 4.
struct Layout {
  int rank = 0;
  int64_t shape[kMaxRank] = {0, 0, 0, 0};
  int64_t stride[kMaxRank] = {0, 0, 0, 0};
  int64_t elements = 0;  // the allocation, padding included

  int64_t rows() const { return rank == 4 ? shape[0] * shape[1] : shape[0]; }
  int64_t heads() const { return shape[rank - 2]; }
  int64_t dim() const { return shape[rank - 1]; }
  int64_t offset(int64_t row, int64_t h, int64_t d) const {
    if (rank == 4) {
      return (row / shape[1]) * stride[0] + (row % shape[1]) * stride[1] + h * stride[2] + d;
    }
    return row * stride[0] + h * stride[1] + d;
  }
  TensorView view(void* data, DType dtype, Device device) const {
    return make_tensor(data, dtype, device, rank, shape, stride);
  }
};

// Row-major layout of `shape` (rank 3 or 4).
Layout contiguous_layout(int rank, const int64_t* shape);
// The same logical shape stored heads-major with `pad` extra elements per row of head_dim:
// [batch, heads, seqlen, dim + pad] (rank 4) or [heads, rows, dim + pad] (rank 3).
Layout heads_major_layout(int rank, const int64_t* shape, int64_t pad);

// A tensor in the dtype under test: host bytes (what is uploaded) and the buffer sfa reads.
struct DataTensor {
  Layout layout;
  DType dtype = DType::kFloat32;
  std::vector<unsigned char> host;
  Buffer buffer;

  // Allocates host bytes (every byte 0xFF: NaN) and the buffer on `device`.
  Status allocate(const Layout& l, DType t, Device device);
  TensorView view() const { return layout.view(buffer.data(), dtype, buffer.device()); }
  // One (row, head) vector of head_dim elements, as float.
  void write(int64_t row, int64_t h, const float* src);
  void read(int64_t row, int64_t h, float* dst) const;
  // Random inputs in every head of `row`.
  void fill_random(int64_t row, Rng* rng);
  Status upload() { return buffer.upload(host.data(), host.size()); }
  Status download() { return buffer.download(host.data(), host.size()); }
};

// The same values as float32 in a contiguous layout (NaN where `src` is NaN, e.g. padding rows).
std::vector<float> to_float32(const DataTensor& src, const Layout& contiguous);

// An int32 vector with a buffer on the run device.
struct IndexTensor {
  std::vector<int32_t> host;
  Buffer buffer;
  Status allocate_and_upload(Device device);
};

// Accumulates the error measures of CaseResult.
class ErrorAccumulator {
 public:
  void out(double got, double ref);
  void lse(float got, float ref);
  void finish(CaseResult* r) const;

 private:
  double diff2_ = 0, ref2_ = 0, lse_error_ = 0;
  int64_t unwritten_ = 0;
};

// Scratch memory per kernel, sized by the library and grown (never shrunk) on demand.
class Workspace {
 public:
  // `query` returns the bytes the kernel needs; it is asked once per kernel.
  template <typename Query>
  Status get(Kernel kernel, Device device, Query query, Launch* launch) {
    auto it = sizes_.find(kernel);
    if (it == sizes_.end()) {
      size_t bytes = 0;
      Status st = query(&bytes);
      if (!st) return st;
      it = sizes_.emplace(kernel, bytes).first;
    }
    const size_t need = it->second;
    if (need == 0) return Status::ok();
    Buffer& buf = device.type == DeviceType::kCPU ? host_ : device_;
    if (buf.bytes() < need) {
      Status st = Buffer::allocate(device, need, &buf);
      if (!st) return st;
    }
    launch->workspace = buf.data();
    launch->workspace_bytes = buf.bytes();
    return Status::ok();
  }

 private:
  std::map<Kernel, size_t> sizes_;
  Buffer host_, device_;
};

bool is_cpu_kernel(Kernel k);
// The device a reference kernel runs on, given the run's device.
Status reference_device(Kernel reference, Device run_device, Device* device);

// A result that names its case, kernel and bounds before anything is compared.
template <typename Case>
CaseResult start_result(const Case& c, Kernel kernel, Kernel reference, uint64_t seed) {
  CaseResult r;
  r.seed = seed;
  r.description = c.describe();
  r.kernel = kernel;
  r.reference = reference;
  r.tolerance = tolerance(c.dtype);
  r.lse_tolerance = lse_tolerance(c.dtype);
  return r;
}

// The first half of AttentionRun::verify and DecodeRun::verify: wait for the kernel, bring its
// outputs to the host, and compute (once per reference kernel, then cached) the reference.
// Returns the reference, or nullptr with r->status saying why.
template <typename Impl>
const typename Impl::Reference* outputs_and_reference(Impl& m, Kernel reference, CaseResult* r) {
  if (!(r->status = synchronize(m.device))) return nullptr;
  if (!(r->status = m.out.download())) return nullptr;
  if (!(r->status = m.lse.download(m.lse_host.data(), m.lse_host.size() * sizeof(float)))) return nullptr;
  auto it = m.references.find(reference);
  if (it == m.references.end()) {
    typename Impl::Reference ref;
    ref.status = m.compute_reference(reference, &ref);
    it = m.references.emplace(reference, std::move(ref)).first;
  }
  if (!(r->status = it->second.status)) return nullptr;
  return &it->second;
}

}  // namespace sfa::testing::detail
