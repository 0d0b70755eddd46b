// TensorView helpers and names.
#include "sfa/tensor.h"

namespace sfa {

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "float32";
    case DType::kFloat16: return "float16";
    case DType::kBFloat16: return "bfloat16";
    case DType::kInt32: return "int32";
  }
  return "unknown";
}

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return 4;
    case DType::kFloat16: return 2;
    case DType::kBFloat16: return 2;
    case DType::kInt32: return 4;
  }
  return 0;
}

const char* status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArgument: return "invalid argument";
    case StatusCode::kUnsupported: return "unsupported";
    case StatusCode::kCudaError: return "CUDA error";
    case StatusCode::kInternal: return "internal error";
  }
  return "unknown";
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank && i < kMaxRank; ++i) n *= shape[i];
  return n;
}

TensorView make_tensor(void* data, DType dtype, Device device, int rank, const int64_t* shape) {
  int64_t stride[kMaxRank] = {0, 0, 0, 0};
  int64_t s = 1;
  for (int i = (rank < kMaxRank ? rank : kMaxRank) - 1; i >= 0; --i) {
    stride[i] = s;
    s *= shape[i] > 0 ? shape[i] : 1;
  }
  return make_tensor(data, dtype, device, rank, shape, stride);
}

TensorView make_tensor(void* data, DType dtype, Device device, int rank, const int64_t* shape,
                       const int64_t* stride) {
  TensorView t;
  t.data = data;
  t.dtype = dtype;
  t.device = device;
  t.rank = rank;  // an out-of-range rank is kept so that validation can name it
  for (int i = 0; i < rank && i < kMaxRank; ++i) {
    t.shape[i] = shape[i];
    t.stride[i] = stride[i];
  }
  return t;
}

}  // namespace sfa
