// See buffer.h.
#include "buffer.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <utility>

#if defined(SFA_TESTING_CUDA)
#include <cuda_runtime.h>
#endif

namespace sfa::testing::detail {
namespace {

constexpr size_t kAlignment = 256;  // as cudaMalloc: every view the tests build is aligned
constexpr unsigned char kPoisonByte = 0xFF;

size_t round_up(size_t n) { return (n + kAlignment - 1) / kAlignment * kAlignment; }

#if defined(SFA_TESTING_CUDA)
Status cuda_status(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Status::ok();
  return Status(StatusCode::kCudaError, std::string(what) + ": " + cudaGetErrorName(err) + " (" +
                                            cudaGetErrorString(err) + ")");
}
#endif

#if !defined(SFA_TESTING_CUDA)
Status no_cuda() {
  return Status(StatusCode::kUnsupported, "sfa_testing was built without CUDA");
}
#endif

}  // namespace

Buffer::Buffer(Buffer&& o) noexcept { *this = std::move(o); }

Buffer& Buffer::operator=(Buffer&& o) noexcept {
  if (this != &o) {
    reset();
    std::swap(data_, o.data_);
    std::swap(bytes_, o.bytes_);
    std::swap(device_, o.device_);
  }
  return *this;
}

Buffer::~Buffer() { reset(); }

void Buffer::reset() {
  if (data_ != nullptr) {
    if (device_.type == DeviceType::kCPU) {
      std::free(data_);
    } else {
#if defined(SFA_TESTING_CUDA)
      cudaFree(data_);  // a failure here has nowhere to go; the next checked call reports it
#endif
    }
  }
  data_ = nullptr;
  bytes_ = 0;
}

Status Buffer::allocate(Device device, size_t bytes, Buffer* out) {
  out->reset();
  const size_t size = round_up(bytes == 0 ? 1 : bytes);
  if (device.type == DeviceType::kCPU) {
    void* p = std::aligned_alloc(kAlignment, size);
    if (p == nullptr) {
      return Status(StatusCode::kInternal, "host allocation of " + std::to_string(size) + " bytes failed");
    }
    out->data_ = p;
  } else {
#if defined(SFA_TESTING_CUDA)
    Status st = set_device(device);
    if (!st) return st;
    void* p = nullptr;
    if (!(st = cuda_status(cudaMalloc(&p, size), "cudaMalloc"))) return st;
    out->data_ = p;
#else
    return no_cuda();
#endif
  }
  out->bytes_ = size;
  out->device_ = device;
  return Status::ok();
}

Status Buffer::upload(const void* host, size_t bytes) {
  if (bytes == 0) return Status::ok();
  if (bytes > bytes_) return Status(StatusCode::kInternal, "upload larger than the buffer");
  if (device_.type == DeviceType::kCPU) {
    std::memcpy(data_, host, bytes);
    return Status::ok();
  }
#if defined(SFA_TESTING_CUDA)
  Status st = set_device(device_);
  if (!st) return st;
  return cuda_status(cudaMemcpy(data_, host, bytes, cudaMemcpyHostToDevice), "cudaMemcpy to device");
#else
  return no_cuda();
#endif
}

Status Buffer::download(void* host, size_t bytes) const {
  if (bytes == 0) return Status::ok();
  if (bytes > bytes_) return Status(StatusCode::kInternal, "download larger than the buffer");
  if (device_.type == DeviceType::kCPU) {
    std::memcpy(host, data_, bytes);
    return Status::ok();
  }
#if defined(SFA_TESTING_CUDA)
  Status st = set_device(device_);
  if (!st) return st;
  return cuda_status(cudaMemcpy(host, data_, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy to host");
#else
  return no_cuda();
#endif
}

Status Buffer::poison(void* stream) {
  if (data_ == nullptr) return Status::ok();
  if (device_.type == DeviceType::kCPU) {
    std::memset(data_, kPoisonByte, bytes_);
    return Status::ok();
  }
#if defined(SFA_TESTING_CUDA)
  Status st = set_device(device_);
  if (!st) return st;
  return cuda_status(cudaMemsetAsync(data_, kPoisonByte, bytes_, static_cast<cudaStream_t>(stream)),
                     "cudaMemsetAsync (poison)");
#else
  (void)stream;
  return no_cuda();
#endif
}

Status synchronize(Device device) {
  if (device.type == DeviceType::kCPU) return Status::ok();
#if defined(SFA_TESTING_CUDA)
  Status st = set_device(device);
  if (!st) return st;
  return cuda_status(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
#else
  return no_cuda();
#endif
}

Status set_device(Device device) {
  if (device.type == DeviceType::kCPU) return Status::ok();
#if defined(SFA_TESTING_CUDA)
  return cuda_status(cudaSetDevice(device.index), "cudaSetDevice");
#else
  return no_cuda();
#endif
}

}  // namespace sfa::testing::detail
