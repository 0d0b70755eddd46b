// Standard attention, the way a framework computes it (the baseline beside the flash kernels,
// and a second oracle for GPU cases too large for the CPU reference):
//   1. S = scale * Q K^T      cuBLAS batched GEMM, float32 S in the workspace
//   2. P = softmax(S), lse    standard_softmax.cu (mask and softcap applied here)
//   3. O = P V                cuBLAS batched GEMM into out
// Every (batch, head) is one matrix of a batched GEMM; K/V of query head h is kv head
// h / (heads / heads_kv) (GQA), expressed by the pointer arrays of standard_pointers.cu. Strided
// tensors are used in place: a matrix's leading dimension is its row stride.
// Accumulation is float32 everywhere (CUBLAS_COMPUTE_32F, which for float32 inputs also rules out
// TF32). For float16/bfloat16 inputs S is float32 and P is stored in the input dtype, because a
// cuBLAS GEMM multiplies two matrices of one type: the same rounding a framework applies.
//
// Row-major tensors seen by column-major cuBLAS: a row-major [rows, cols] matrix with row stride
// ld is the column-major [cols, rows] matrix with leading dimension ld, i.e. its transpose. So
//   S = Q K^T  is computed as  S^T = K^T' Q'   (m = seqlen_k, n = seqlen_q, k = head_dim, A^T)
//   O = P V    is computed as  O^T = V' P'     (m = head_dim, n = seqlen_q, k = seqlen_k)
// where X' denotes the column-major view of X's memory.
//
// Memory: S needs batch * heads * seqlen_q * seqlen_k floats in the caller's workspace
// (attention_workspace_size() says how much). The cuBLAS handle of a device is created on the
// first call on that device and kept for the life of the process: that first call allocates
// (cuBLAS's own state), the one exception to "no allocation inside an entry point". cuBLAS's
// scratch is set to a slice of the caller's workspace on every call.
#include <cublas_v2.h>

#include <mutex>
#include <string>
#include <vector>

#include "cuda/common/check.cuh"
#include "cuda/launchers.h"
#include "cuda/standard/standard.h"

namespace sfa::cuda {
namespace {

// cuBLAS scratch: NVIDIA recommends 32 MiB on Hopper (cuBLAS documentation, cublasSetWorkspace).
constexpr size_t kCublasWorkspaceBytes = size_t{32} << 20;
constexpr size_t kAlign = 256;
constexpr int kPointerArrays = 6;

size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

Status cublas_status(cublasStatus_t st, const char* what) {
  if (st == CUBLAS_STATUS_SUCCESS) return Status::ok();
  return Status(StatusCode::kCudaError, std::string(what) + ": " + cublasGetStatusString(st));
}

cudaDataType_t cuda_type(DType d) {
  switch (d) {
    case DType::kFloat16: return CUDA_R_16F;
    case DType::kBFloat16: return CUDA_R_16BF;
    default: return CUDA_R_32F;
  }
}

// One handle per device, shared by every caller; `mutex` serialises its use (stream and
// workspace are per-handle settings).
std::mutex& cublas_mutex() {
  static std::mutex mutex;
  return mutex;
}

Status cublas_handle(int device, cublasHandle_t* handle) {  // call with cublas_mutex() held
  static std::vector<cublasHandle_t> handles;
  if (static_cast<int>(handles.size()) <= device) handles.resize(device + 1, nullptr);
  if (handles[device] == nullptr) {
    SFA_RETURN_IF_ERROR(cublas_status(cublasCreate(&handles[device]), "cublasCreate"));
  }
  *handle = handles[device];
  return Status::ok();
}

bool fits_int(int64_t x) { return x >= 0 && x <= INT32_MAX; }

// The leading dimension cuBLAS gets for a matrix of `rows` rows with row stride `stride`: the
// stride of a single row is arbitrary (never stepped over) but cuBLAS wants ld >= the row length.
int64_t leading_dim(int64_t stride, int64_t rows, int64_t row_length) {
  return rows <= 1 && stride < row_length ? row_length : stride;
}

}  // namespace

StandardLayout standard_layout(const AttentionProblem& p) {
  StandardLayout l;
  const size_t items = static_cast<size_t>(p.batch) * p.heads;
  const bool in_place = p.dtype == DType::kFloat32;
  l.ld_s = (p.seqlen_k + 3) / 4 * 4;
  l.ld_p = in_place ? l.ld_s : (p.seqlen_k + 7) / 8 * 8;
  l.cublas = 0;
  l.pointers = align_up(kCublasWorkspaceBytes + kAlign);  // + kAlign: room to align cuBLAS's slice
  l.s = l.pointers + align_up(kPointerArrays * items * sizeof(void*));
  const size_t s_bytes = items * p.seqlen_q * l.ld_s * sizeof(float);
  l.p = in_place ? l.s : l.s + align_up(s_bytes);
  const size_t p_bytes = in_place ? 0 : items * p.seqlen_q * l.ld_p * dtype_size(p.dtype);
  l.total = (in_place ? l.s + align_up(s_bytes) : l.p + align_up(p_bytes));
  return l;
}

size_t standard_workspace_size(const AttentionProblem& p) { return standard_layout(p).total; }

Status launch_standard(const AttentionProblem& p, void* workspace, cudaStream_t stream) {
  const StandardLayout layout = standard_layout(p);
  const int64_t items = static_cast<int64_t>(p.batch) * p.heads;
  const int64_t ld_q = leading_dim(p.q_stride.row, p.seqlen_q, p.head_dim);
  const int64_t ld_k = leading_dim(p.k_stride.row, p.seqlen_k, p.head_dim);
  const int64_t ld_v = leading_dim(p.v_stride.row, p.seqlen_k, p.head_dim);
  const int64_t ld_o = leading_dim(p.out_stride.row, p.seqlen_q, p.head_dim);
  for (int64_t ld : {ld_q, ld_k, ld_v, ld_o, layout.ld_s, layout.ld_p, items}) {
    if (!fits_int(ld)) {
      return Status(StatusCode::kUnsupported, "kernel 'standard': a row stride or batch * heads = " +
                                                  std::to_string(ld) + " exceeds cuBLAS's 32-bit sizes");
    }
  }
  char* ws = static_cast<char*>(workspace);
  auto** arrays = reinterpret_cast<void**>(ws + layout.pointers);
  StandardPointers ptrs;
  ptrs.k = const_cast<const void**>(arrays);
  ptrs.q = const_cast<const void**>(arrays + items);
  ptrs.s = arrays + 2 * items;
  ptrs.v = const_cast<const void**>(arrays + 3 * items);
  ptrs.p = const_cast<const void**>(arrays + 4 * items);
  ptrs.o = arrays + 5 * items;
  auto* s = reinterpret_cast<float*>(ws + layout.s);
  void* pbuf = ws + layout.p;

  if (p.seqlen_k == 0) {  // no key: out = 0, lse = -inf, nothing to multiply
    return launch_standard_softmax(p, s, layout.ld_s, pbuf, layout.ld_p, /*zero_out=*/true, stream);
  }
  SFA_RETURN_IF_ERROR(launch_standard_pointers(p, ptrs, s, pbuf, layout.ld_s, layout.ld_p, stream));

  int device = 0;
  SFA_CUDA_TRY(cudaGetDevice(&device));
  std::lock_guard<std::mutex> lock(cublas_mutex());
  cublasHandle_t handle = nullptr;
  SFA_RETURN_IF_ERROR(cublas_handle(device, &handle));
  // cublasSetStream resets the workspace to cuBLAS's own pool, so the workspace is set after it.
  SFA_RETURN_IF_ERROR(cublas_status(cublasSetStream(handle, stream), "cublasSetStream"));
  // cuBLAS wants a 256-byte aligned workspace; the caller's is only promised 16-byte alignment.
  const uintptr_t base = reinterpret_cast<uintptr_t>(ws + layout.cublas);
  void* cublas_ws = reinterpret_cast<void*>((base + kAlign - 1) / kAlign * kAlign);
  SFA_RETURN_IF_ERROR(cublas_status(cublasSetWorkspace(handle, cublas_ws, kCublasWorkspaceBytes),
                                    "cublasSetWorkspace"));
  const cudaDataType_t type = cuda_type(p.dtype);
  const float scale = p.softmax_scale, one = 1.0f, zero = 0.0f;
  const int batch_count = static_cast<int>(items);

  // 1. S^T = K^T' Q'  (S = scale Q K^T)
  SFA_RETURN_IF_ERROR(cublas_status(
      cublasGemmBatchedEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, p.seqlen_k, p.seqlen_q, p.head_dim, &scale,
                          ptrs.k, type, static_cast<int>(ld_k), ptrs.q, type, static_cast<int>(ld_q), &zero, ptrs.s, CUDA_R_32F,
                          static_cast<int>(layout.ld_s), batch_count, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
      "cublasGemmBatchedEx (Q K^T)"));
  // 2. P = softmax(S), lse
  SFA_RETURN_IF_ERROR(launch_standard_softmax(p, s, layout.ld_s, pbuf, layout.ld_p, /*zero_out=*/false, stream));
  // 3. O^T = V' P'  (O = P V)
  return cublas_status(
      cublasGemmBatchedEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, p.head_dim, p.seqlen_q, p.seqlen_k, &one, ptrs.v,
                          type, static_cast<int>(ld_v), ptrs.p, type, static_cast<int>(layout.ld_p), &zero,
                          ptrs.o, type, static_cast<int>(ld_o), batch_count,
                          CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
      "cublasGemmBatchedEx (P V)");
}

}  // namespace sfa::cuda
