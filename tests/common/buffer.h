// Internal to sfa_testing: an owned byte buffer on the host or on a CUDA device, and the few
// copies the harness needs. Every CUDA call is checked and reported as a Status.
#pragma once

#include <cstddef>

#include "sfa/sfa.h"

namespace sfa::testing::detail {

class Buffer {
 public:
  Buffer() = default;
  Buffer(Buffer&& o) noexcept;
  Buffer& operator=(Buffer&& o) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer();

  // At least `bytes` bytes (never a null pointer), 256-byte aligned, on `device`.
  static Status allocate(Device device, size_t bytes, Buffer* out);

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

  // Host memory -> this buffer, and back (the first `bytes` bytes).
  Status upload(const void* host, size_t bytes);
  Status download(void* host, size_t bytes) const;
  // Every byte 0xFF: NaN in float32, float16 and bfloat16. Queued on `stream` for CUDA.
  Status poison(void* stream);

 private:
  void reset();
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
};

// Waits for all work on `device` (no-op on the CPU).
Status synchronize(Device device);
// Makes `device` current for the calling thread (no-op on the CPU).
Status set_device(Device device);

}  // namespace sfa::testing::detail
