// sfa._sfa — the Python extension: DLPack arrays in, sfa's C++ API out, nothing else.
//
// Every array arrives through nanobind's nb::ndarray (DLPack or the buffer protocol), so torch,
// CuPy, JAX and NumPy arrays are seen without a copy: the view keeps the producer's pointer and
// element strides. The Python layer (python/sfa/) allocates the outputs and the workspace with
// the caller's framework and passes the framework's current stream; this file only converts
// views, calls sfa and turns a failing Status into a Python exception:
//   kInvalidArgument -> ValueError (TypeError when the message is about a dtype)
//   kUnsupported     -> NotImplementedError
//   kCudaError, kInternal -> RuntimeError
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sfa/sfa.h"

#ifdef SFA_PYTHON_CUDA
#include <cuda_runtime_api.h>
#endif

namespace nb = nanobind;

namespace {

using sfa::DType;
using sfa::Status;
using sfa::StatusCode;
using sfa::TensorView;

// Inputs may be read-only (JAX arrays, NumPy broadcasts); outputs must be writable.
using InArray = nb::ndarray<nb::ro>;
using OutArray = nb::ndarray<>;
using OptIn = std::optional<InArray>;
using OptOut = std::optional<OutArray>;

[[noreturn]] void raise(PyObject* type, const std::string& message) {
  PyErr_SetString(type, message.c_str());
  throw nb::python_error();
}

[[noreturn]] void raise_status(const Status& st) {
  PyObject* type = PyExc_RuntimeError;
  if (st.code() == StatusCode::kInvalidArgument) {
    const bool dtype_problem = st.message().find(": expected dtype ") != std::string::npos;
    type = dtype_problem ? PyExc_TypeError : PyExc_ValueError;
  } else if (st.code() == StatusCode::kUnsupported) {
    type = PyExc_NotImplementedError;
  }
  raise(type, st.message());
}

void check(const Status& st) {
  if (!st) raise_status(st);
}

std::string dlpack_dtype_name(nb::dlpack::dtype d) {
  const char* base = "unknown";
  switch (static_cast<nb::dlpack::dtype_code>(d.code)) {
    case nb::dlpack::dtype_code::Int: base = "int"; break;
    case nb::dlpack::dtype_code::UInt: base = "uint"; break;
    case nb::dlpack::dtype_code::Float: base = "float"; break;
    case nb::dlpack::dtype_code::Bfloat: base = "bfloat"; break;
    case nb::dlpack::dtype_code::Complex: base = "complex"; break;
    case nb::dlpack::dtype_code::Bool: return "bool";
    default: break;
  }
  std::string name = base + std::to_string(d.bits);
  if (d.lanes != 1) name += "x" + std::to_string(d.lanes);
  return name;
}

// What an argument holds, for the message when its dtype is not one sfa has at all (a dtype sfa
// has but the argument does not take is reported by the library's validation).
const char* expected_dtypes(const std::string& name) {
  if (name.find("seqlens") != std::string::npos || name == "block_table") return "int32";
  if (name == "lse") return "float32";
  if (name == "array") return "float32, float16, bfloat16 or int32";
  return "float32, float16 or bfloat16";
}

DType to_dtype(const char* name, nb::dlpack::dtype d) {
  using Code = nb::dlpack::dtype_code;
  const auto code = static_cast<Code>(d.code);
  if (d.lanes == 1) {
    if (code == Code::Float && d.bits == 32) return DType::kFloat32;
    if (code == Code::Float && d.bits == 16) return DType::kFloat16;
    if (code == Code::Bfloat && d.bits == 16) return DType::kBFloat16;
    if (code == Code::Int && d.bits == 32) return DType::kInt32;
  }
  raise(PyExc_TypeError, std::string(name) + ": expected dtype " + expected_dtypes(name) + ", got " +
                             dlpack_dtype_name(d));
}

sfa::Device to_device(const char* name, int32_t device_type, int32_t device_id) {
  switch (device_type) {
    case nb::device::cpu::value:
    case nb::device::cuda_host::value:  // pinned host memory is host memory
      return sfa::Device::cpu();
    case nb::device::cuda::value:
      return sfa::Device::cuda(device_id);
    default:
      raise(PyExc_ValueError, std::string(name) + ": expected a CPU or CUDA array, got DLPack device type " +
                                  std::to_string(device_type));
  }
}

// A view of the array's memory as sfa sees it: same pointer, same element strides. A rank above
// sfa's maximum keeps its rank so that validation names it.
template <typename Array>
TensorView to_view(const char* name, const Array& a) {
  TensorView t;
  t.data = const_cast<void*>(static_cast<const void*>(a.data()));
  t.dtype = to_dtype(name, a.dtype());
  t.device = to_device(name, a.device_type(), a.device_id());
  t.rank = static_cast<int>(a.ndim());
  bool empty = false;
  for (int i = 0; i < t.rank && i < sfa::kMaxRank; ++i) {
    t.shape[i] = static_cast<int64_t>(a.shape(i));
    t.stride[i] = static_cast<int64_t>(a.stride(i));
    empty = empty || t.shape[i] == 0;
  }
  // An array without elements has arbitrary strides (NumPy exports zeros): give it row-major ones,
  // which mean the same and pass the layout rules.
  int64_t row_major = 1;
  for (int i = std::min(t.rank, sfa::kMaxRank) - 1; empty && i >= 0; --i) {
    t.stride[i] = row_major;
    row_major *= t.shape[i] > 0 ? t.shape[i] : 1;
  }
  return t;
}

template <typename Array>
TensorView to_view(const char* name, const std::optional<Array>& a) {
  return a ? to_view(name, *a) : TensorView{};
}

sfa::Kernel to_kernel(const std::string& name) {
  sfa::Kernel kernel = sfa::Kernel::kAuto;
  check(sfa::kernel_from_name(name.c_str(), &kernel));
  return kernel;
}

// Scratch memory from the caller's framework: alloc(nbytes) returns a uint8 array on the tensors'
// device. The array is kept alive by `holder` until the call returns (frameworks with stream-
// ordered allocators, like torch's, keep it valid for the work queued on the stream).
sfa::Launch make_launch(uintptr_t stream, size_t bytes, const nb::object& alloc,
                        std::optional<OutArray>* holder) {
  sfa::Launch launch;
  launch.stream = reinterpret_cast<void*>(stream);
  if (bytes == 0 || alloc.is_none()) return launch;
  nb::object buffer = alloc(bytes);
  holder->emplace(nb::cast<OutArray>(buffer));
  const OutArray& ws = **holder;
  size_t size = ws.ndim() == 0 ? 0 : 1;
  for (size_t i = 0; i < ws.ndim(); ++i) size *= ws.shape(i);
  launch.workspace = ws.data();
  launch.workspace_bytes = size * (ws.dtype().bits / 8);
  return launch;
}

template <typename Out, typename OptLse>
sfa::AttentionArgs attention_args(const InArray& q, const InArray& k, const InArray& v,
                                  const Out& out, const OptLse& lse, const OptIn& cu_seqlens_q,
                                  const OptIn& cu_seqlens_k, int64_t max_seqlen_q, int64_t max_seqlen_k,
                                  float softmax_scale, bool causal, int64_t window_left,
                                  int64_t window_right, float softcap, const std::string& kernel) {
  sfa::AttentionArgs a;
  a.q = to_view("q", q);
  a.k = to_view("k", k);
  a.v = to_view("v", v);
  a.out = to_view("out", out);
  a.lse = to_view("lse", lse);
  a.cu_seqlens_q = to_view("cu_seqlens_q", cu_seqlens_q);
  a.cu_seqlens_k = to_view("cu_seqlens_k", cu_seqlens_k);
  a.max_seqlen_q = max_seqlen_q;
  a.max_seqlen_k = max_seqlen_k;
  a.softmax_scale = softmax_scale;
  a.causal = causal;
  a.window_left = window_left;
  a.window_right = window_right;
  a.softcap = softcap;
  a.kernel = to_kernel(kernel);
  return a;
}

template <typename Out, typename OptLse>
sfa::DecodeArgs decode_args(const InArray& q, const InArray& k_cache, const InArray& v_cache,
                            const Out& out, const OptLse& lse, const OptIn& cache_seqlens,
                            const OptIn& block_table, float softmax_scale, int64_t window_left,
                            float softcap, int num_splits, const std::string& kernel) {
  sfa::DecodeArgs a;
  a.q = to_view("q", q);
  a.k_cache = to_view("k_cache", k_cache);
  a.v_cache = to_view("v_cache", v_cache);
  a.out = to_view("out", out);
  a.lse = to_view("lse", lse);
  a.cache_seqlens = to_view("cache_seqlens", cache_seqlens);
  a.block_table = to_view("block_table", block_table);
  a.softmax_scale = softmax_scale;
  a.window_left = window_left;
  a.softcap = softcap;
  a.num_splits = num_splits;
  a.kernel = to_kernel(kernel);
  return a;
}

void attention(const InArray& q, const InArray& k, const InArray& v, const OutArray& out,
               const OptOut& lse, const OptIn& cu_seqlens_q, const OptIn& cu_seqlens_k,
               int64_t max_seqlen_q, int64_t max_seqlen_k, float softmax_scale, bool causal,
               int64_t window_left, int64_t window_right, float softcap, const std::string& kernel,
               bool varlen, uintptr_t stream, const nb::object& alloc) {
  const sfa::AttentionArgs a =
      attention_args(q, k, v, out, lse, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
                     softmax_scale, causal, window_left, window_right, softcap, kernel);
  size_t bytes = 0;
  check(sfa::attention_workspace_size(a, varlen, &bytes));
  std::optional<OutArray> workspace;
  const sfa::Launch launch = make_launch(stream, bytes, alloc, &workspace);
  Status st;
  {
    nb::gil_scoped_release release;
    st = varlen ? sfa::attention_varlen(a, launch) : sfa::attention(a, launch);
  }
  check(st);
}

void decode(const InArray& q, const InArray& k_cache, const InArray& v_cache, const OutArray& out,
            const OptOut& lse, const OptIn& cache_seqlens, const OptIn& block_table,
            float softmax_scale, int64_t window_left, float softcap, int num_splits,
            const std::string& kernel, uintptr_t stream, const nb::object& alloc) {
  const sfa::DecodeArgs a = decode_args(q, k_cache, v_cache, out, lse, cache_seqlens, block_table,
                                        softmax_scale, window_left, softcap, num_splits, kernel);
  size_t bytes = 0;
  check(sfa::decode_workspace_size(a, &bytes));
  std::optional<OutArray> workspace;
  const sfa::Launch launch = make_launch(stream, bytes, alloc, &workspace);
  Status st;
  {
    nb::gil_scoped_release release;
    st = sfa::decode(a, launch);
  }
  check(st);
}

// (kernel name, workspace bytes) that attention() would use: validates like the call itself.
std::pair<std::string, size_t> attention_plan(const InArray& q, const InArray& k, const InArray& v,
                                              const InArray& out, const OptIn& lse,
                                              const OptIn& cu_seqlens_q, const OptIn& cu_seqlens_k,
                                              int64_t max_seqlen_q, int64_t max_seqlen_k,
                                              float softmax_scale, bool causal, int64_t window_left,
                                              int64_t window_right, float softcap,
                                              const std::string& kernel, bool varlen) {
  const sfa::AttentionArgs a =
      attention_args(q, k, v, out, lse, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
                     softmax_scale, causal, window_left, window_right, softcap, kernel);
  sfa::Kernel selected = sfa::Kernel::kAuto;
  size_t bytes = 0;
  check(sfa::select_kernel(a, varlen, &selected));
  check(sfa::attention_workspace_size(a, varlen, &bytes));
  return {sfa::kernel_name(selected), bytes};
}

std::pair<std::string, size_t> decode_plan(const InArray& q, const InArray& k_cache,
                                           const InArray& v_cache, const InArray& out,
                                           const OptIn& lse, const OptIn& cache_seqlens,
                                           const OptIn& block_table, float softmax_scale,
                                           int64_t window_left, float softcap, int num_splits,
                                           const std::string& kernel) {
  const sfa::DecodeArgs a = decode_args(q, k_cache, v_cache, out, lse, cache_seqlens, block_table,
                                        softmax_scale, window_left, softcap, num_splits, kernel);
  sfa::Kernel selected = sfa::Kernel::kAuto;
  size_t bytes = 0;
  check(sfa::select_kernel(a, &selected));
  check(sfa::decode_workspace_size(a, &bytes));
  return {sfa::kernel_name(selected), bytes};
}

// Names of the kernels this build holds: the CPU backend's, then the CUDA kernels compiled in.
std::vector<std::string> kernels() {
  std::vector<std::string> names;
  const sfa::Kernel all[] = {sfa::Kernel::kCpuReference, sfa::Kernel::kCpuFlash, sfa::Kernel::kCpuDecode,
                             sfa::Kernel::kStandard,     sfa::Kernel::kFa1,      sfa::Kernel::kFa2,
                             sfa::Kernel::kDecode,       sfa::Kernel::kFa2Mma,   sfa::Kernel::kDecodeFast};
  for (sfa::Kernel k : all) {
    if (sfa::kernel_built(k)) names.emplace_back(sfa::kernel_name(k));
  }
  return names;
}

// What sfa sees of an array: (data pointer, shape, element strides, dtype, device). Lets tests
// check that a strided view reaches the library without a copy.
nb::tuple describe(const InArray& a) {
  const TensorView t = to_view("array", a);
  std::vector<int64_t> shape(t.shape, t.shape + std::min(t.rank, sfa::kMaxRank));
  std::vector<int64_t> stride(t.stride, t.stride + std::min(t.rank, sfa::kMaxRank));
  const std::string device =
      t.device.type == sfa::DeviceType::kCPU ? "cpu" : "cuda:" + std::to_string(t.device.index);
  return nb::make_tuple(reinterpret_cast<uintptr_t>(t.data), shape, stride,
                        std::string(sfa::dtype_name(t.dtype)), device);
}

// Waits for the work queued on a CUDA stream (for frameworks without a stream of their own that
// sfa could queue on, such as JAX). A no-op in a build without CUDA.
void synchronize(uintptr_t stream) {
#ifdef SFA_PYTHON_CUDA
  cudaError_t err = cudaSuccess;
  {
    nb::gil_scoped_release release;
    err = cudaStreamSynchronize(reinterpret_cast<cudaStream_t>(stream));
  }
  if (err != cudaSuccess) {
    raise(PyExc_RuntimeError, std::string("cudaStreamSynchronize: ") + cudaGetErrorName(err) + " (" +
                                  cudaGetErrorString(err) + ")");
  }
#else
  (void)stream;
#endif
}

}  // namespace

NB_MODULE(_sfa, m) {
  m.doc() = "sfa's C++ API over DLPack arrays (use the sfa package, not this module)";

  m.def("attention", &attention, nb::arg("q"), nb::arg("k"), nb::arg("v"), nb::arg("out"),
        nb::arg("lse").none(), nb::arg("cu_seqlens_q").none(), nb::arg("cu_seqlens_k").none(),
        nb::arg("max_seqlen_q"), nb::arg("max_seqlen_k"), nb::arg("softmax_scale"), nb::arg("causal"),
        nb::arg("window_left"), nb::arg("window_right"), nb::arg("softcap"), nb::arg("kernel"),
        nb::arg("varlen"), nb::arg("stream"), nb::arg("alloc").none());
  m.def("decode", &decode, nb::arg("q"), nb::arg("k_cache"), nb::arg("v_cache"), nb::arg("out"),
        nb::arg("lse").none(), nb::arg("cache_seqlens").none(), nb::arg("block_table").none(),
        nb::arg("softmax_scale"), nb::arg("window_left"), nb::arg("softcap"), nb::arg("num_splits"),
        nb::arg("kernel"), nb::arg("stream"), nb::arg("alloc").none());
  m.def("attention_plan", &attention_plan, nb::arg("q"), nb::arg("k"), nb::arg("v"), nb::arg("out"),
        nb::arg("lse").none(), nb::arg("cu_seqlens_q").none(), nb::arg("cu_seqlens_k").none(),
        nb::arg("max_seqlen_q"), nb::arg("max_seqlen_k"), nb::arg("softmax_scale"), nb::arg("causal"),
        nb::arg("window_left"), nb::arg("window_right"), nb::arg("softcap"), nb::arg("kernel"),
        nb::arg("varlen"));
  m.def("decode_plan", &decode_plan, nb::arg("q"), nb::arg("k_cache"), nb::arg("v_cache"),
        nb::arg("out"), nb::arg("lse").none(), nb::arg("cache_seqlens").none(),
        nb::arg("block_table").none(), nb::arg("softmax_scale"), nb::arg("window_left"),
        nb::arg("softcap"), nb::arg("num_splits"), nb::arg("kernel"));
  m.def("kernels", &kernels);
  m.def("built_with_cuda", &sfa::built_with_cuda);
  m.def("cuda_device_count", &sfa::cuda_device_count);
  m.def("describe", &describe, nb::arg("array"));
  m.def("synchronize", &synchronize, nb::arg("stream"));
}
