// sfa — tensor views and status: the vocabulary of the public API.
//
// A TensorView describes memory the caller owns: a pointer, a dtype, a device, a shape and
// element strides. sfa never allocates, frees or copies through a view.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace sfa {

enum class DType : int32_t {
  kFloat32 = 0,
  kFloat16 = 1,
  kBFloat16 = 2,
  kInt32 = 3,  // index tensors: cu_seqlens, cache_seqlens, block_table
};

// "float32", "float16", "bfloat16", "int32".
const char* dtype_name(DType dtype);
// Bytes per element (4, 2, 2, 4).
size_t dtype_size(DType dtype);

enum class DeviceType : int32_t { kCPU = 0, kCUDA = 1 };

struct Device {
  DeviceType type = DeviceType::kCPU;
  int index = 0;  // CUDA ordinal; 0 for the CPU

  static Device cpu() { return {DeviceType::kCPU, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::kCUDA, index}; }
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
};

constexpr int kMaxRank = 4;

// A non-owning view of a strided tensor. Strides are in elements, not bytes.
// A view with data == nullptr and rank == 0 is "absent" (used for optional arguments).
struct TensorView {
  void* data = nullptr;
  DType dtype = DType::kFloat32;
  Device device = Device::cpu();
  int rank = 0;
  int64_t shape[kMaxRank] = {0, 0, 0, 0};
  int64_t stride[kMaxRank] = {0, 0, 0, 0};

  bool present() const { return data != nullptr || rank != 0; }
  int64_t numel() const;  // product of the shape (0 when any extent is 0)
};

// A view with row-major (contiguous) strides for the given shape (rank 1..4).
TensorView make_tensor(void* data, DType dtype, Device device, int rank, const int64_t* shape);
// As above with explicit element strides.
TensorView make_tensor(void* data, DType dtype, Device device, int rank, const int64_t* shape,
                       const int64_t* stride);

enum class StatusCode : int32_t {
  kOk = 0,
  kInvalidArgument = 1,  // an argument is wrong: the message names it
  kUnsupported = 2,      // a valid request this build / device / kernel cannot serve
  kCudaError = 3,        // the CUDA runtime reported an error
  kInternal = 4,
};

// What every entry point returns. No exception escapes sfa; nothing aborts.
class Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status ok() { return Status(); }

  bool is_ok() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

const char* status_code_name(StatusCode code);

}  // namespace sfa
