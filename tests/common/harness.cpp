// See harness.h.
#include "harness.h"

#include <cstring>
#include <limits>

#include "common/dtype_convert.h"

namespace sfa::testing::detail {

uint64_t Rng::next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double Rng::uniform() {
  constexpr double kInv2Pow53 = 1.0 / 9007199254740992.0;
  return static_cast<double>(next() >> 11) * kInv2Pow53;
}

double Rng::normal() {
  constexpr double kTwoPi = 6.283185307179586;
  const double u1 = 1.0 - uniform();  // (0, 1]: log is finite
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(kTwoPi * u2);
}

float Rng::input() {
  constexpr double kSqrt3 = 1.7320508075688772;
  return static_cast<float>((2.0 * uniform() - 1.0) * kSqrt3);
}

int Rng::uniform_int(int lo, int hi) {
  if (hi <= lo) return lo;
  return lo + static_cast<int>(next() % static_cast<uint64_t>(hi - lo + 1));
}

Layout contiguous_layout(int rank, const int64_t* shape) {
  Layout l;
  l.rank = rank;
  int64_t s = 1;
  for (int i = rank - 1; i >= 0; --i) {
    l.shape[i] = shape[i];
    l.stride[i] = s;
    s *= shape[i];
  }
  l.elements = s;
  return l;
}

Layout heads_major_layout(int rank, const int64_t* shape, int64_t pad) {
  Layout l;
  l.rank = rank;
  for (int i = 0; i < rank; ++i) l.shape[i] = shape[i];
  const int64_t dim = shape[rank - 1] + pad;
  l.stride[rank - 1] = 1;
  if (rank == 4) {  // [batch, seqlen, heads, dim] stored as [batch, heads, seqlen, dim + pad]
    l.stride[1] = dim;
    l.stride[2] = shape[1] * dim;
    l.stride[0] = shape[2] * shape[1] * dim;
    l.elements = shape[0] * l.stride[0];
  } else {  // [rows, heads, dim] stored as [heads, rows, dim + pad]
    l.stride[0] = dim;
    l.stride[1] = shape[0] * dim;
    l.elements = shape[1] * l.stride[1];
  }
  return l;
}

Status DataTensor::allocate(const Layout& l, DType t, Device device) {
  layout = l;
  dtype = t;
  host.assign(static_cast<size_t>(l.elements) * dtype_size(t), 0xFF);
  return Buffer::allocate(device, host.size(), &buffer);
}

void DataTensor::write(int64_t row, int64_t h, const float* src) {
  const int64_t base = layout.offset(row, h, 0);
  const int64_t n = layout.dim();
  auto* p16 = reinterpret_cast<uint16_t*>(host.data()) + base;
  switch (dtype) {
    case DType::kFloat16:
      for (int64_t d = 0; d < n; ++d) p16[d] = float_to_half_bits(src[d]);
      break;
    case DType::kBFloat16:
      for (int64_t d = 0; d < n; ++d) p16[d] = float_to_bf16_bits(src[d]);
      break;
    default:
      std::memcpy(reinterpret_cast<float*>(host.data()) + base, src, n * sizeof(float));
      break;
  }
}

void DataTensor::read(int64_t row, int64_t h, float* dst) const {
  const int64_t base = layout.offset(row, h, 0);
  const int64_t n = layout.dim();
  const auto* p16 = reinterpret_cast<const uint16_t*>(host.data()) + base;
  switch (dtype) {
    case DType::kFloat16:
      for (int64_t d = 0; d < n; ++d) dst[d] = half_bits_to_float(p16[d]);
      break;
    case DType::kBFloat16:
      for (int64_t d = 0; d < n; ++d) dst[d] = bf16_bits_to_float(p16[d]);
      break;
    default:
      std::memcpy(dst, reinterpret_cast<const float*>(host.data()) + base, n * sizeof(float));
      break;
  }
}

void DataTensor::fill_random(int64_t row, Rng* rng) {
  std::vector<float> values(static_cast<size_t>(layout.dim()));
  for (int64_t h = 0; h < layout.heads(); ++h) {
    for (float& x : values) x = rng->input();
    write(row, h, values.data());
  }
}

std::vector<float> to_float32(const DataTensor& src, const Layout& c) {
  std::vector<float> out(static_cast<size_t>(c.elements));
  for (int64_t r = 0; r < c.rows(); ++r) {
    for (int64_t h = 0; h < c.heads(); ++h) src.read(r, h, &out[c.offset(r, h, 0)]);
  }
  return out;
}

Status IndexTensor::allocate_and_upload(Device device) {
  Status st = Buffer::allocate(device, host.size() * sizeof(int32_t), &buffer);
  if (!st) return st;
  return buffer.upload(host.data(), host.size() * sizeof(int32_t));
}

void ErrorAccumulator::out(double got, double ref) {
  if (std::isnan(got)) {
    ++unwritten_;
    return;
  }
  const double d = got - ref;
  diff2_ += d * d;
  ref2_ += ref * ref;
}

void ErrorAccumulator::lse(float got, float ref) {
  if (std::isnan(got)) {
    ++unwritten_;
    return;
  }
  if (std::isinf(ref) || std::isinf(got)) {
    // -inf (an empty row) must be reproduced exactly, and nothing else may be infinite.
    if (got != ref) lse_error_ = std::numeric_limits<double>::infinity();
    return;
  }
  const double e = std::fabs(static_cast<double>(got) - ref);
  if (e > lse_error_) lse_error_ = e;
}

void ErrorAccumulator::finish(CaseResult* r) const {
  r->out_error = ref2_ > 0 ? std::sqrt(diff2_ / ref2_) : std::sqrt(diff2_);
  r->lse_error = lse_error_;
  r->unwritten = unwritten_;
}

bool is_cpu_kernel(Kernel k) {
  return k == Kernel::kCpuReference || k == Kernel::kCpuFlash || k == Kernel::kCpuDecode;
}

Status reference_device(Kernel reference, Device run_device, Device* device) {
  if (is_cpu_kernel(reference)) {
    *device = Device::cpu();
    return Status::ok();
  }
  if (run_device.type != DeviceType::kCUDA) {
    return Status(StatusCode::kUnsupported,
                  std::string("reference kernel '") + kernel_name(reference) +
                      "' runs on CUDA; this run is on the CPU");
  }
  *device = run_device;
  return Status::ok();
}

}  // namespace sfa::testing::detail
