// Argument validation for attention(), attention_varlen() and decode(). See validate.h.
#include "api/validate.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "cuda/cuda_backend.h"

namespace sfa {
namespace {

constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
constexpr int64_t kMinHeadDim = 8;
constexpr int64_t kMaxHeadDim = 256;
constexpr int64_t kHeadDimMultiple = 8;
constexpr uintptr_t kCudaAlignment = 16;  // bytes: the kernels load 16-byte vectors

Status invalid(const std::string& message) {
  return Status(StatusCode::kInvalidArgument, message);
}

std::string shape_string(const TensorView& t) {
  std::string s = "[";
  for (int i = 0; i < t.rank && i < kMaxRank; ++i) {
    if (i) s += ", ";
    s += std::to_string(t.shape[i]);
  }
  return s + "]";
}

std::string device_string(Device d) {
  return d.type == DeviceType::kCPU ? "cpu" : "cuda:" + std::to_string(d.index);
}

bool is_float_dtype(DType d) {
  return d == DType::kFloat32 || d == DType::kFloat16 || d == DType::kBFloat16;
}

// Rank, extents, strides, overflow, null data and (for CUDA) alignment of one tensor.
// `layout` describes the expected shape for the message, e.g. "[batch, seqlen_q, heads, head_dim]".
// `vector_loads`: the CUDA kernels read it with 16-byte vectors (q, k, v, out), so its base and
// strides must be 16-byte multiples; the small tensors read or written one element at a time
// (lse, lengths, offsets, block tables) only need their elements aligned.
Status check_layout(const char* name, const TensorView& t, int rank, const char* layout,
                    bool vector_loads = true) {
  if (t.rank != rank) {
    return invalid(std::string(name) + ": expected rank " + std::to_string(rank) + " " + layout +
                   ", got rank " + std::to_string(t.rank));
  }
  int64_t max_offset = 0;
  int64_t numel = 1;
  for (int i = 0; i < rank; ++i) {
    if (t.shape[i] < 0) {
      return invalid(std::string(name) + ": expected non-negative extents, got shape " +
                     shape_string(t));
    }
    if (t.stride[i] < 0) {
      return invalid(std::string(name) + ": expected non-negative strides, got stride[" +
                     std::to_string(i) + "] = " + std::to_string(t.stride[i]));
    }
    int64_t span = 0;
    if (t.shape[i] > 0 && (__builtin_mul_overflow(t.shape[i] - 1, t.stride[i], &span) ||
                           __builtin_add_overflow(max_offset, span, &max_offset))) {
      return invalid(std::string(name) + ": shape " + shape_string(t) +
                     " with its strides overflows a 64-bit element offset");
    }
    if (__builtin_mul_overflow(numel, t.shape[i], &numel)) {
      return invalid(std::string(name) + ": shape " + shape_string(t) +
                     " has more elements than a 64-bit count holds");
    }
  }
  int64_t max_byte = 0;
  if (__builtin_mul_overflow(max_offset + 1, static_cast<int64_t>(dtype_size(t.dtype)), &max_byte)) {
    return invalid(std::string(name) + ": shape " + shape_string(t) +
                   " with its strides overflows a 64-bit byte offset");
  }
  if (numel > 0 && t.data == nullptr) {
    return invalid(std::string(name) + ": data is null for a tensor of shape " + shape_string(t));
  }
  if (rank > 0 && t.shape[rank - 1] > 1 && t.stride[rank - 1] != 1) {
    return invalid(std::string(name) + ": expected a contiguous last dimension (stride 1), got stride " +
                   std::to_string(t.stride[rank - 1]));
  }
  if (t.device.type == DeviceType::kCUDA && numel > 0 && !vector_loads) {
    if (reinterpret_cast<uintptr_t>(t.data) % dtype_size(t.dtype) != 0) {
      return invalid(std::string(name) + ": expected a data pointer aligned to its " +
                     std::to_string(dtype_size(t.dtype)) + "-byte elements on CUDA");
    }
  } else if (t.device.type == DeviceType::kCUDA && numel > 0) {
    const uintptr_t address = reinterpret_cast<uintptr_t>(t.data);
    if (address % kCudaAlignment != 0) {
      return invalid(std::string(name) + ": expected a 16-byte aligned data pointer on CUDA, got " +
                     std::to_string(address % kCudaAlignment) + " bytes past alignment");
    }
    for (int i = 0; i + 1 < rank; ++i) {
      const int64_t bytes = t.stride[i] * static_cast<int64_t>(dtype_size(t.dtype));
      if (t.shape[i] > 1 && bytes % static_cast<int64_t>(kCudaAlignment) != 0) {
        return invalid(std::string(name) + ": expected stride[" + std::to_string(i) +
                       "] to be a multiple of 16 bytes on CUDA, got " + std::to_string(bytes) +
                       " bytes");
      }
    }
  }
  return Status::ok();
}

Status check_device(const char* name, const TensorView& t, Device expected) {
  if (t.device != expected) {
    return invalid(std::string(name) + ": expected device " + device_string(expected) +
                   " (the device of q), got " + device_string(t.device));
  }
  return Status::ok();
}

Status check_dtype(const char* name, const TensorView& t, DType expected, const char* why) {
  if (t.dtype != expected) {
    return invalid(std::string(name) + ": expected dtype " + dtype_name(expected) + " (" + why +
                   "), got " + dtype_name(t.dtype));
  }
  return Status::ok();
}

Status check_extent(const char* name, const TensorView& t, int dim, const char* what,
                    int64_t expected) {
  if (t.shape[dim] != expected) {
    return invalid(std::string(name) + ": expected shape[" + std::to_string(dim) + "] (" + what +
                   ") = " + std::to_string(expected) + ", got " + std::to_string(t.shape[dim]) +
                   " (shape " + shape_string(t) + ")");
  }
  return Status::ok();
}

Status check_int32_size(const char* what, int64_t value) {
  if (value > kInt32Max) {
    return invalid(std::string(what) + ": expected at most " + std::to_string(kInt32Max) + ", got " +
                   std::to_string(value));
  }
  return Status::ok();
}

// The device every tensor must share: q's. CUDA must be built and the ordinal must exist.
Status check_primary_device(const TensorView& q, Device* device) {
  *device = q.device;
  if (q.device.type == DeviceType::kCUDA) {
    if (!cuda::built()) {
      return Status(StatusCode::kUnsupported,
                    "q: tensors are on " + device_string(q.device) + " but sfa was built without CUDA");
    }
    const int count = cuda::device_count();
    if (q.device.index < 0 || q.device.index >= count) {
      return invalid("q: expected a CUDA device index in [0, " + std::to_string(count) + "), got " +
                     std::to_string(q.device.index));
    }
  } else if (q.device.type != DeviceType::kCPU) {
    return invalid("q: unknown device type " + std::to_string(static_cast<int>(q.device.type)));
  }
  return Status::ok();
}

Status check_head_dim(int64_t head_dim) {
  if (head_dim < kMinHeadDim || head_dim > kMaxHeadDim || head_dim % kHeadDimMultiple != 0) {
    return invalid("q: expected head_dim (last extent) a multiple of 8 in [8, 256], got " +
                   std::to_string(head_dim));
  }
  return Status::ok();
}

Status check_scale_softcap(float softmax_scale, float softcap, float* resolved_scale,
                           int64_t head_dim) {
  if (!std::isfinite(softmax_scale)) {
    return invalid("softmax_scale: expected a finite value (0 = 1/sqrt(head_dim)), got " +
                   std::to_string(softmax_scale));
  }
  if (!std::isfinite(softcap) || softcap < 0.0f) {
    return invalid("softcap: expected a finite value >= 0 (0 = off), got " + std::to_string(softcap));
  }
  *resolved_scale =
      softmax_scale != 0.0f ? softmax_scale : 1.0f / std::sqrt(static_cast<float>(head_dim));
  return Status::ok();
}

Status check_window(const char* name, int64_t w) {
  if (w < -1) return invalid(std::string(name) + ": expected -1 (unbounded) or >= 0, got " + std::to_string(w));
  return Status::ok();
}

Strides strides_bshd(const TensorView& t, bool packed) {
  // Dense [batch, seqlen, heads, head_dim]; packed [total, heads, head_dim].
  return packed ? Strides{0, t.stride[0], t.stride[1]} : Strides{t.stride[0], t.stride[1], t.stride[2]};
}

// Host-side content checks of an int32 prefix-sum vector (CPU tensors only).
Status check_cu_seqlens_contents(const char* name, const TensorView& cu, int64_t total,
                                 int64_t max_seqlen, const char* max_name) {
  const auto* c = static_cast<const int32_t*>(cu.data);
  const int64_t n = cu.shape[0];
  const int64_t s = cu.stride[0];
  if (c[0] < 0) return invalid(std::string(name) + ": expected element 0 >= 0, got " + std::to_string(c[0]));
  for (int64_t b = 0; b + 1 < n; ++b) {
    const int64_t len = static_cast<int64_t>(c[(b + 1) * s]) - c[b * s];
    if (len < 0) {
      return invalid(std::string(name) + ": expected non-decreasing values, got " +
                     std::to_string(c[b * s]) + " then " + std::to_string(c[(b + 1) * s]) +
                     " at index " + std::to_string(b));
    }
    if (len > max_seqlen) {
      return invalid(std::string(max_name) + ": expected at least every sequence's length, got " +
                     std::to_string(max_seqlen) + " but sequence " + std::to_string(b) + " has " +
                     std::to_string(len));
    }
  }
  if (c[(n - 1) * s] > total) {
    return invalid(std::string(name) + ": expected the last element <= " + std::to_string(total) +
                   " (rows of the packed tensor), got " + std::to_string(c[(n - 1) * s]));
  }
  return Status::ok();
}

}  // namespace

Status validate_attention(const AttentionArgs& a, bool varlen, AttentionProblem* p, Device* device) {
  const int rank = varlen ? 3 : 4;
  const char* q_layout = varlen ? "[total_q, heads, head_dim]" : "[batch, seqlen_q, heads, head_dim]";
  const char* kv_layout = varlen ? "[total_k, heads_kv, head_dim]" : "[batch, seqlen_k, heads_kv, head_dim]";
  Status st;

  // dtype and device first: they decide which further rules apply.
  if (!is_float_dtype(a.q.dtype)) {
    return invalid(std::string("q: expected dtype float32, float16 or bfloat16, got ") +
                   dtype_name(a.q.dtype));
  }
  if (!(st = check_primary_device(a.q, device))) return st;

  struct Named { const char* name; const TensorView* t; const char* layout; };
  const Named data[] = {{"q", &a.q, q_layout}, {"k", &a.k, kv_layout}, {"v", &a.v, kv_layout},
                        {"out", &a.out, q_layout}};
  for (const Named& n : data) {
    if (!(st = check_device(n.name, *n.t, *device))) return st;
    if (!(st = check_dtype(n.name, *n.t, a.q.dtype, "the dtype of q"))) return st;
    if (!(st = check_layout(n.name, *n.t, rank, n.layout))) return st;
  }

  const int d = rank - 1;  // head_dim axis
  const int64_t head_dim = a.q.shape[d];
  const int64_t heads = a.q.shape[d - 1];
  const int64_t heads_kv = a.k.shape[d - 1];
  if (!(st = check_head_dim(head_dim))) return st;
  if (heads < 1) return invalid("q: expected heads >= 1, got " + std::to_string(heads));
  if (heads_kv < 1 || heads % heads_kv != 0) {
    return invalid("k: expected heads_kv (shape[" + std::to_string(d - 1) + "]) >= 1 dividing heads = " +
                   std::to_string(heads) + ", got " + std::to_string(heads_kv));
  }
  if (!(st = check_extent("k", a.k, d, "head_dim", head_dim))) return st;
  if (!(st = check_extent("v", a.v, d, "head_dim", head_dim))) return st;
  if (!(st = check_extent("v", a.v, d - 1, "heads_kv", heads_kv))) return st;
  if (!(st = check_extent("v", a.v, 0, varlen ? "total_k" : "batch", a.k.shape[0]))) return st;
  for (int i = 0; i < rank; ++i) {
    if (!(st = check_extent("out", a.out, i, "like q", a.q.shape[i]))) return st;
  }
  if (!varlen) {
    if (!(st = check_extent("k", a.k, 0, "batch", a.q.shape[0]))) return st;
    if (!(st = check_extent("v", a.v, 1, "seqlen_k", a.k.shape[1]))) return st;
  }
  if (!(st = check_int32_size("heads", heads))) return st;

  // Varlen offsets and bounds.
  int64_t batch = 0, seqlen_q = 0, seqlen_k = 0;
  if (varlen) {
    if (!a.cu_seqlens_q.present()) return invalid("cu_seqlens_q: required by attention_varlen");
    if (!a.cu_seqlens_k.present()) return invalid("cu_seqlens_k: required by attention_varlen");
    const Named cus[] = {{"cu_seqlens_q", &a.cu_seqlens_q, "[batch + 1]"},
                         {"cu_seqlens_k", &a.cu_seqlens_k, "[batch + 1]"}};
    for (const Named& n : cus) {
      if (!(st = check_device(n.name, *n.t, *device))) return st;
      if (!(st = check_dtype(n.name, *n.t, DType::kInt32, "sequence offsets"))) return st;
      if (!(st = check_layout(n.name, *n.t, 1, n.layout, false))) return st;
    }
    if (a.cu_seqlens_q.shape[0] < 1) {
      return invalid("cu_seqlens_q: expected shape [batch + 1] with batch >= 0, got " +
                     shape_string(a.cu_seqlens_q));
    }
    if (!(st = check_extent("cu_seqlens_k", a.cu_seqlens_k, 0, "batch + 1", a.cu_seqlens_q.shape[0])))
      return st;
    batch = a.cu_seqlens_q.shape[0] - 1;
    if (a.max_seqlen_q < 0 || a.max_seqlen_q > kInt32Max)
      return invalid("max_seqlen_q: expected a value in [0, 2^31), got " + std::to_string(a.max_seqlen_q));
    if (a.max_seqlen_k < 0 || a.max_seqlen_k > kInt32Max)
      return invalid("max_seqlen_k: expected a value in [0, 2^31), got " + std::to_string(a.max_seqlen_k));
    seqlen_q = a.max_seqlen_q;
    seqlen_k = a.max_seqlen_k;
    if (device->type == DeviceType::kCPU && batch >= 0) {
      if (!(st = check_cu_seqlens_contents("cu_seqlens_q", a.cu_seqlens_q, a.q.shape[0], seqlen_q,
                                           "max_seqlen_q")))
        return st;
      if (!(st = check_cu_seqlens_contents("cu_seqlens_k", a.cu_seqlens_k, a.k.shape[0], seqlen_k,
                                           "max_seqlen_k")))
        return st;
    }
  } else {
    if (a.cu_seqlens_q.present()) return invalid("cu_seqlens_q: only accepted by attention_varlen");
    if (a.cu_seqlens_k.present()) return invalid("cu_seqlens_k: only accepted by attention_varlen");
    batch = a.q.shape[0];
    seqlen_q = a.q.shape[1];
    seqlen_k = a.k.shape[1];
  }
  if (!(st = check_int32_size("batch", batch))) return st;
  if (!(st = check_int32_size("seqlen_q", seqlen_q))) return st;
  if (!(st = check_int32_size("seqlen_k", seqlen_k))) return st;
  int64_t rows = 0;
  if (__builtin_mul_overflow(batch * heads, seqlen_q > 0 ? seqlen_q : 1, &rows) || batch * heads > kInt32Max) {
    return invalid("q: batch * heads = " + std::to_string(batch * heads) +
                   " exceeds what the kernels index (at most 2^31 - 1)");
  }

  // LSE: optional, float32 [batch, heads, seqlen_q] (varlen: [heads, total_q]).
  if (a.lse.present()) {
    if (!(st = check_device("lse", a.lse, *device))) return st;
    if (!(st = check_dtype("lse", a.lse, DType::kFloat32, "log-sum-exp is float32"))) return st;
    if (varlen) {
      if (!(st = check_layout("lse", a.lse, 2, "[heads, total_q]", false))) return st;
      if (!(st = check_extent("lse", a.lse, 0, "heads", heads))) return st;
      if (!(st = check_extent("lse", a.lse, 1, "total_q", a.q.shape[0]))) return st;
    } else {
      if (!(st = check_layout("lse", a.lse, 3, "[batch, heads, seqlen_q]", false))) return st;
      if (!(st = check_extent("lse", a.lse, 0, "batch", batch))) return st;
      if (!(st = check_extent("lse", a.lse, 1, "heads", heads))) return st;
      if (!(st = check_extent("lse", a.lse, 2, "seqlen_q", seqlen_q))) return st;
    }
  }

  // Options.
  float scale = 0.0f;
  if (!(st = check_scale_softcap(a.softmax_scale, a.softcap, &scale, head_dim))) return st;
  if (!(st = check_window("window_left", a.window_left))) return st;
  if (!(st = check_window("window_right", a.window_right))) return st;
  if (a.causal && a.window_right > 0) {
    return invalid("window_right: expected -1 or 0 with causal (causal is window_right = 0), got " +
                   std::to_string(a.window_right));
  }

  *p = AttentionProblem{};
  p->dtype = a.q.dtype;
  p->q = a.q.data;
  p->k = a.k.data;
  p->v = a.v.data;
  p->out = a.out.data;
  p->lse = static_cast<float*>(a.lse.data);
  p->q_stride = strides_bshd(a.q, varlen);
  p->k_stride = strides_bshd(a.k, varlen);
  p->v_stride = strides_bshd(a.v, varlen);
  p->out_stride = strides_bshd(a.out, varlen);
  if (a.lse.present()) {
    p->lse_batch_stride = varlen ? 0 : a.lse.stride[0];
    p->lse_head_stride = varlen ? a.lse.stride[0] : a.lse.stride[1];
  }
  p->batch = static_cast<int>(batch);
  p->heads = static_cast<int>(heads);
  p->heads_kv = static_cast<int>(heads_kv);
  p->head_dim = static_cast<int>(head_dim);
  p->seqlen_q = static_cast<int>(seqlen_q);
  p->seqlen_k = static_cast<int>(seqlen_k);
  if (varlen) {
    p->cu_seqlens_q = static_cast<const int32_t*>(a.cu_seqlens_q.data);
    p->cu_seqlens_k = static_cast<const int32_t*>(a.cu_seqlens_k.data);
    p->total_q = a.q.shape[0];
    p->total_k = a.k.shape[0];
  }
  p->softmax_scale = scale;
  p->softcap = a.softcap;
  p->causal = a.causal;
  p->window_left = a.window_left;
  p->window_right = a.causal ? 0 : a.window_right;
  return Status::ok();
}

Status validate_decode(const DecodeArgs& a, DecodeProblem* p, Device* device) {
  Status st;
  if (!is_float_dtype(a.q.dtype)) {
    return invalid(std::string("q: expected dtype float32, float16 or bfloat16, got ") +
                   dtype_name(a.q.dtype));
  }
  if (!(st = check_primary_device(a.q, device))) return st;

  const bool paged = a.block_table.present();
  const char* q_layout = "[batch, seqlen_q, heads, head_dim]";
  const char* cache_layout =
      paged ? "[num_pages, page_size, heads_kv, head_dim]" : "[batch, capacity, heads_kv, head_dim]";
  struct Named { const char* name; const TensorView* t; const char* layout; };
  const Named data[] = {{"q", &a.q, q_layout}, {"k_cache", &a.k_cache, cache_layout},
                        {"v_cache", &a.v_cache, cache_layout}, {"out", &a.out, q_layout}};
  for (const Named& n : data) {
    if (!(st = check_device(n.name, *n.t, *device))) return st;
    if (!(st = check_dtype(n.name, *n.t, a.q.dtype, "the dtype of q"))) return st;
    if (!(st = check_layout(n.name, *n.t, 4, n.layout))) return st;
  }
  const int64_t batch = a.q.shape[0];
  const int64_t seqlen_q = a.q.shape[1];
  const int64_t heads = a.q.shape[2];
  const int64_t head_dim = a.q.shape[3];
  const int64_t heads_kv = a.k_cache.shape[2];
  if (!(st = check_head_dim(head_dim))) return st;
  if (heads < 1) return invalid("q: expected heads >= 1, got " + std::to_string(heads));
  if (heads_kv < 1 || heads % heads_kv != 0) {
    return invalid("k_cache: expected heads_kv (shape[2]) >= 1 dividing heads = " +
                   std::to_string(heads) + ", got " + std::to_string(heads_kv));
  }
  for (int i = 0; i < 4; ++i) {
    if (!(st = check_extent("v_cache", a.v_cache, i, "like k_cache", a.k_cache.shape[i]))) return st;
    if (!(st = check_extent("out", a.out, i, "like q", a.q.shape[i]))) return st;
  }
  if (!(st = check_extent("k_cache", a.k_cache, 3, "head_dim", head_dim))) return st;
  if (!(st = check_int32_size("batch", batch))) return st;
  if (!(st = check_int32_size("seqlen_q", seqlen_q))) return st;
  if (!(st = check_int32_size("heads", heads))) return st;
  if (batch * heads > kInt32Max) {
    return invalid("q: batch * heads = " + std::to_string(batch * heads) +
                   " exceeds what the kernels index (at most 2^31 - 1)");
  }

  int64_t capacity = 0, page_size = 0, num_pages = 0, max_pages = 0;
  if (paged) {
    if (!(st = check_device("block_table", a.block_table, *device))) return st;
    if (!(st = check_dtype("block_table", a.block_table, DType::kInt32, "page indices"))) return st;
    if (!(st = check_layout("block_table", a.block_table, 2, "[batch, max_pages_per_seq]", false))) return st;
    if (!(st = check_extent("block_table", a.block_table, 0, "batch", batch))) return st;
    num_pages = a.k_cache.shape[0];
    page_size = a.k_cache.shape[1];
    max_pages = a.block_table.shape[1];
    if (page_size < 1) {
      return invalid("k_cache: expected page_size (shape[1]) >= 1, got " + std::to_string(page_size));
    }
    if (!(st = check_int32_size("page_size", page_size))) return st;
    if (!(st = check_int32_size("block_table max_pages_per_seq", max_pages))) return st;
    if (__builtin_mul_overflow(max_pages, page_size, &capacity) || capacity > kInt32Max) {
      return invalid("block_table: max_pages_per_seq * page_size = " + std::to_string(max_pages) +
                     " * " + std::to_string(page_size) + " exceeds 2^31 - 1 cache positions");
    }
  } else {
    if (!(st = check_extent("k_cache", a.k_cache, 0, "batch", batch))) return st;
    capacity = a.k_cache.shape[1];
    if (!(st = check_int32_size("k_cache capacity", capacity))) return st;
  }

  if (a.cache_seqlens.present()) {
    if (!(st = check_device("cache_seqlens", a.cache_seqlens, *device))) return st;
    if (!(st = check_dtype("cache_seqlens", a.cache_seqlens, DType::kInt32, "lengths"))) return st;
    if (!(st = check_layout("cache_seqlens", a.cache_seqlens, 1, "[batch]", false))) return st;
    if (!(st = check_extent("cache_seqlens", a.cache_seqlens, 0, "batch", batch))) return st;
    if (device->type == DeviceType::kCPU) {
      const auto* len = static_cast<const int32_t*>(a.cache_seqlens.data);
      for (int64_t b = 0; b < batch; ++b) {
        const int64_t n = len[b * a.cache_seqlens.stride[0]];
        if (n < 0 || n > capacity) {
          return invalid("cache_seqlens: expected values in [0, " + std::to_string(capacity) +
                         "] (the cache capacity), got " + std::to_string(n) + " at index " +
                         std::to_string(b));
        }
      }
    }
  }
  if (paged && device->type == DeviceType::kCPU) {
    // Every page a sequence uses must exist (pages past its length are never read).
    const auto* table = static_cast<const int32_t*>(a.block_table.data);
    const auto* len = static_cast<const int32_t*>(a.cache_seqlens.data);
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t n = len ? len[b * a.cache_seqlens.stride[0]] : capacity;
      const int64_t used = (n + page_size - 1) / page_size;
      for (int64_t pg = 0; pg < used; ++pg) {
        const int64_t page = table[b * a.block_table.stride[0] + pg * a.block_table.stride[1]];
        if (page < 0 || page >= num_pages) {
          return invalid("block_table: expected page indices in [0, " + std::to_string(num_pages) +
                         "), got " + std::to_string(page) + " at [" + std::to_string(b) + ", " +
                         std::to_string(pg) + "]");
        }
      }
    }
  }

  if (a.lse.present()) {
    if (!(st = check_device("lse", a.lse, *device))) return st;
    if (!(st = check_dtype("lse", a.lse, DType::kFloat32, "log-sum-exp is float32"))) return st;
    if (!(st = check_layout("lse", a.lse, 3, "[batch, heads, seqlen_q]", false))) return st;
    if (!(st = check_extent("lse", a.lse, 0, "batch", batch))) return st;
    if (!(st = check_extent("lse", a.lse, 1, "heads", heads))) return st;
    if (!(st = check_extent("lse", a.lse, 2, "seqlen_q", seqlen_q))) return st;
  }

  float scale = 0.0f;
  if (!(st = check_scale_softcap(a.softmax_scale, a.softcap, &scale, head_dim))) return st;
  if (!(st = check_window("window_left", a.window_left))) return st;
  if (a.num_splits < 0 || a.num_splits > kMaxSplits) {
    return invalid("num_splits: expected a value in [0, " + std::to_string(kMaxSplits) +
                   "] (0 = heuristic), got " + std::to_string(a.num_splits));
  }

  *p = DecodeProblem{};
  p->dtype = a.q.dtype;
  p->q = a.q.data;
  p->k_cache = a.k_cache.data;
  p->v_cache = a.v_cache.data;
  p->out = a.out.data;
  p->lse = static_cast<float*>(a.lse.data);
  p->q_stride = strides_bshd(a.q, false);
  p->k_stride = strides_bshd(a.k_cache, false);
  p->v_stride = strides_bshd(a.v_cache, false);
  p->out_stride = strides_bshd(a.out, false);
  if (a.lse.present()) {
    p->lse_batch_stride = a.lse.stride[0];
    p->lse_head_stride = a.lse.stride[1];
  }
  p->batch = static_cast<int>(batch);
  p->heads = static_cast<int>(heads);
  p->heads_kv = static_cast<int>(heads_kv);
  p->head_dim = static_cast<int>(head_dim);
  p->seqlen_q = static_cast<int>(seqlen_q);
  p->capacity = capacity;
  p->cache_seqlens = static_cast<const int32_t*>(a.cache_seqlens.data);
  if (paged) {
    p->block_table = static_cast<const int32_t*>(a.block_table.data);
    p->block_table_stride = a.block_table.stride[0];
    p->page_size = static_cast<int>(page_size);
    p->num_pages = num_pages;
    p->max_pages_per_seq = static_cast<int>(max_pages);
  }
  p->softmax_scale = scale;
  p->softcap = a.softcap;
  p->window_left = a.window_left;
  p->num_splits = a.num_splits;  // 0 until the selection resolves it
  return Status::ok();
}

}  // namespace sfa
