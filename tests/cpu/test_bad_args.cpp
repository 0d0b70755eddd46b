// One case per validation rule (src/api/validate.cpp) and per selection/entry rule
// (select.cpp, entry.cpp): each breaks exactly that rule in otherwise valid arguments and checks
// the status code, a message naming the argument and what was expected, that select_kernel() and
// *_workspace_size() agree with the entry point, and that out and lse are bitwise untouched.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <functional>
#include <limits>
#include <ostream>
#include <string>

#include "bad_args.h"

namespace sfa {
namespace testing {
namespace {


// ---- attention() and attention_varlen() ------------------------------------------------------

struct BadAttention {
  std::string name;
  bool varlen;
  std::function<void(AttentionArgs*, Scratch*)> mutate;
  StatusCode code;
  std::string message;          // a distinctive part of the expected message
  bool needs_gpu = false;       // fake CUDA pointers: validation only, on a machine with a GPU
};

BadAttention A(std::string name, std::function<void(AttentionArgs*, Scratch*)> f, StatusCode code,
               std::string message) {
  return {std::move(name), false, std::move(f), code, std::move(message)};
}
BadAttention V(std::string name, std::function<void(AttentionArgs*, Scratch*)> f, StatusCode code,
               std::string message) {
  return {std::move(name), true, std::move(f), code, std::move(message)};
}


// Turns every tensor of the call into a (never dereferenced) CUDA view at 16-byte aligned fake
// addresses, so that only the CUDA-specific layout rules can fail.
void fake_cuda(AttentionArgs* a) {
  uintptr_t address = 0x100000;
  for (TensorView* t : {&a->q, &a->k, &a->v, &a->out, &a->lse}) {
    t->device = Device::cuda(0);
    t->data = reinterpret_cast<void*>(address);
    address += 0x100000;
  }
}

std::vector<BadAttention> attention_table() {
  using AA = AttentionArgs;
  return {
      A("q_dtype_int32", [](AA* a, Scratch*) { a->q.dtype = DType::kInt32; }, kBad,
        "q: expected dtype float32, float16 or bfloat16, got int32"),
      A("q_missing_cuda_device", [](AA* a, Scratch*) { a->q.device = Device::cuda(99); },
        missing_device_code(), missing_device_message()),
      A("q_unknown_device_type",
        [](AA* a, Scratch*) { a->q.device = Device{static_cast<DeviceType>(7), 0}; }, kBad,
        "q: unknown device type 7"),
      A("k_other_device", [](AA* a, Scratch*) { a->k.device = Device::cuda(0); }, kBad,
        "k: expected device cpu (the device of q), got cuda:0"),
      A("v_dtype", [](AA* a, Scratch*) { a->v.dtype = DType::kFloat32; }, kBad,
        "v: expected dtype float16 (the dtype of q), got float32"),
      A("out_dtype", [](AA* a, Scratch*) { a->out.dtype = DType::kBFloat16; }, kBad,
        "out: expected dtype float16 (the dtype of q), got bfloat16"),
      A("q_rank", [](AA* a, Scratch*) { a->q.rank = 3; }, kBad,
        "q: expected rank 4 [batch, seqlen_q, heads, head_dim], got rank 3"),
      A("k_negative_extent", [](AA* a, Scratch*) { a->k.shape[1] = -1; }, kBad,
        "k: expected non-negative extents, got shape [2, -1, 2, 16]"),
      A("v_negative_stride", [](AA* a, Scratch*) { a->v.stride[0] = -1; }, kBad,
        "v: expected non-negative strides, got stride[0] = -1"),
      A("out_element_offset_overflow", [](AA* a, Scratch*) { a->out.stride[0] = kInt64Max; }, kBad,
        "out: shape [2, 5, 4, 16] with its strides overflows a 64-bit element offset"),
      A("out_byte_offset_overflow", [](AA* a, Scratch*) { a->out.stride[0] = int64_t{1} << 62; }, kBad,
        "out: shape [2, 5, 4, 16] with its strides overflows a 64-bit byte offset"),
      A("q_element_count_overflow",
        [](AA* a, Scratch*) {
          set_shape(&a->q, {k2Pow32, k2Pow32, 4, 16});
          a->q.stride[0] = a->q.stride[1] = 0;
        },
        kBad, "q: shape [4294967296, 4294967296, 4, 16] has more elements than a 64-bit count holds"),
      A("v_null_data", [](AA* a, Scratch*) { a->v.data = nullptr; }, kBad,
        "v: data is null for a tensor of shape [2, 7, 2, 16]"),
      A("lse_null_data", [](AA* a, Scratch*) { a->lse.data = nullptr; }, kBad,
        "lse: data is null for a tensor of shape [2, 4, 5]"),
      A("k_last_stride", [](AA* a, Scratch*) { a->k.stride[3] = 2; }, kBad,
        "k: expected a contiguous last dimension (stride 1), got stride 2"),
      A("head_dim_not_multiple_of_8", [](AA* a, Scratch*) { a->q.shape[3] = 12; }, kBad,
        "q: expected head_dim (last extent) a multiple of 8 in [8, 256], got 12"),
      A("head_dim_too_large", [](AA* a, Scratch*) { a->q.shape[3] = 264; }, kBad,
        "q: expected head_dim (last extent) a multiple of 8 in [8, 256], got 264"),
      A("heads_zero", [](AA* a, Scratch*) { a->q.shape[2] = 0; }, kBad, "q: expected heads >= 1, got 0"),
      A("heads_kv_not_dividing", [](AA* a, Scratch*) { a->k.shape[2] = 3; }, kBad,
        "k: expected heads_kv (shape[2]) >= 1 dividing heads = 4, got 3"),
      A("k_head_dim", [](AA* a, Scratch*) { a->k.shape[3] = 8; }, kBad,
        "k: expected shape[3] (head_dim) = 16, got 8"),
      A("v_head_dim", [](AA* a, Scratch*) { a->v.shape[3] = 8; }, kBad,
        "v: expected shape[3] (head_dim) = 16, got 8"),
      A("v_heads_kv", [](AA* a, Scratch*) { a->v.shape[2] = 1; }, kBad,
        "v: expected shape[2] (heads_kv) = 2, got 1"),
      A("v_batch", [](AA* a, Scratch*) { a->v.shape[0] = 1; }, kBad, "v: expected shape[0] (batch) = 2, got 1"),
      A("out_seqlen", [](AA* a, Scratch*) { a->out.shape[1] = 4; }, kBad,
        "out: expected shape[1] (like q) = 5, got 4"),
      A("k_batch", [](AA* a, Scratch*) { a->k.shape[0] = a->v.shape[0] = 1; }, kBad,
        "k: expected shape[0] (batch) = 2, got 1"),
      A("v_seqlen_k", [](AA* a, Scratch*) { a->v.shape[1] = 6; }, kBad,
        "v: expected shape[1] (seqlen_k) = 7, got 6"),
      A("heads_beyond_int32", [](AA* a, Scratch*) { a->q.shape[2] = a->out.shape[2] = k2Pow32; }, kBad,
        "heads: expected at most 2147483647, got 4294967296"),
      A("batch_beyond_int32",
        [](AA* a, Scratch*) { a->q.shape[0] = a->out.shape[0] = a->k.shape[0] = a->v.shape[0] = k2Pow31; },
        kBad, "batch: expected at most 2147483647, got 2147483648"),
      A("seqlen_q_beyond_int32", [](AA* a, Scratch*) { a->q.shape[1] = a->out.shape[1] = k2Pow31; }, kBad,
        "seqlen_q: expected at most 2147483647, got 2147483648"),
      A("seqlen_k_beyond_int32", [](AA* a, Scratch*) { a->k.shape[1] = a->v.shape[1] = k2Pow31; }, kBad,
        "seqlen_k: expected at most 2147483647, got 2147483648"),
      A("batch_times_heads_beyond_int32",
        [](AA* a, Scratch*) {
          a->q.shape[0] = a->out.shape[0] = a->k.shape[0] = a->v.shape[0] = 65536;
          a->q.shape[2] = a->out.shape[2] = 65536;
        },
        kBad, "q: batch * heads = 4294967296 exceeds what the kernels index"),
      A("cu_seqlens_q_on_dense",
        [](AA* a, Scratch* s) {
          const int64_t n = 3;
          a->cu_seqlens_q = make_tensor(s->ints({0, 5, 10}), DType::kInt32, Device::cpu(), 1, &n);
        },
        kBad, "cu_seqlens_q: only accepted by attention_varlen"),
      A("cu_seqlens_k_on_dense",
        [](AA* a, Scratch* s) {
          const int64_t n = 3;
          a->cu_seqlens_k = make_tensor(s->ints({0, 7, 14}), DType::kInt32, Device::cpu(), 1, &n);
        },
        kBad, "cu_seqlens_k: only accepted by attention_varlen"),
      A("lse_device", [](AA* a, Scratch*) { a->lse.device = Device::cuda(0); }, kBad,
        "lse: expected device cpu (the device of q), got cuda:0"),
      A("lse_dtype", [](AA* a, Scratch*) { a->lse.dtype = DType::kFloat16; }, kBad,
        "lse: expected dtype float32 (log-sum-exp is float32), got float16"),
      A("lse_rank", [](AA* a, Scratch*) { a->lse.rank = 2; }, kBad,
        "lse: expected rank 3 [batch, heads, seqlen_q], got rank 2"),
      A("lse_batch", [](AA* a, Scratch*) { a->lse.shape[0] = 1; }, kBad, "lse: expected shape[0] (batch) = 2, got 1"),
      A("lse_heads", [](AA* a, Scratch*) { a->lse.shape[1] = 2; }, kBad, "lse: expected shape[1] (heads) = 4, got 2"),
      A("lse_seqlen_q", [](AA* a, Scratch*) { a->lse.shape[2] = 4; }, kBad,
        "lse: expected shape[2] (seqlen_q) = 5, got 4"),
      A("softmax_scale_nan", [](AA* a, Scratch*) { a->softmax_scale = kNaN; }, kBad,
        "softmax_scale: expected a finite value (0 = 1/sqrt(head_dim))"),
      A("softmax_scale_inf", [](AA* a, Scratch*) { a->softmax_scale = kInf; }, kBad,
        "softmax_scale: expected a finite value (0 = 1/sqrt(head_dim))"),
      A("softcap_negative", [](AA* a, Scratch*) { a->softcap = -1.0f; }, kBad,
        "softcap: expected a finite value >= 0 (0 = off), got -1"),
      A("softcap_inf", [](AA* a, Scratch*) { a->softcap = kInf; }, kBad, "softcap: expected a finite value >= 0"),
      A("window_left", [](AA* a, Scratch*) { a->window_left = -2; }, kBad,
        "window_left: expected -1 (unbounded) or >= 0, got -2"),
      A("window_right", [](AA* a, Scratch*) { a->window_right = -5; }, kBad,
        "window_right: expected -1 (unbounded) or >= 0, got -5"),
      A("causal_with_window_right",
        [](AA* a, Scratch*) {
          a->causal = true;
          a->window_right = 3;
        },
        kBad, "window_right: expected -1 or 0 with causal (causal is window_right = 0), got 3"),
      A("unknown_kernel_value", [](AA* a, Scratch*) { a->kernel = static_cast<Kernel>(99); }, kBad,
        "kernel: unknown kernel value 99"),
      A("cuda_kernel_on_cpu", [](AA* a, Scratch*) { a->kernel = Kernel::kFa2; }, kUnsup,
        "kernel 'fa2': runs on CUDA tensors; q is on the CPU"),
      A("decode_kernel_through_attention", [](AA* a, Scratch*) { a->kernel = Kernel::kCpuDecode; }, kUnsup,
        "kernel 'cpu-decode': is a decode kernel; call decode()"),
      {"cuda_misaligned_pointer", false,
       [](AA* a, Scratch*) {
         fake_cuda(a);
         a->q.data = static_cast<char*>(a->q.data) + 2;
       },
       kBad, "q: expected a 16-byte aligned data pointer on CUDA, got 2 bytes past alignment", true},
      {"cuda_misaligned_stride", false,
       [](AA* a, Scratch*) {
         fake_cuda(a);
         a->k.stride[1] += 1;
       },
       kBad, "k: expected stride[1] to be a multiple of 16 bytes on CUDA, got 66 bytes", true},

      // attention_varlen()
      V("varlen_q_rank", [](AA* a, Scratch*) { a->q.rank = 4; }, kBad,
        "q: expected rank 3 [total_q, heads, head_dim], got rank 4"),
      V("varlen_heads_kv_not_dividing", [](AA* a, Scratch*) { a->k.shape[1] = 3; }, kBad,
        "k: expected heads_kv (shape[1]) >= 1 dividing heads = 4, got 3"),
      V("varlen_v_total_k", [](AA* a, Scratch*) { a->v.shape[0] -= 1; }, kBad, "v: expected shape[0] (total_k) = "),
      V("cu_seqlens_q_missing", [](AA* a, Scratch*) { a->cu_seqlens_q = TensorView{}; }, kBad,
        "cu_seqlens_q: required by attention_varlen"),
      V("cu_seqlens_k_missing", [](AA* a, Scratch*) { a->cu_seqlens_k = TensorView{}; }, kBad,
        "cu_seqlens_k: required by attention_varlen"),
      V("cu_seqlens_q_device", [](AA* a, Scratch*) { a->cu_seqlens_q.device = Device::cuda(0); }, kBad,
        "cu_seqlens_q: expected device cpu (the device of q), got cuda:0"),
      V("cu_seqlens_k_dtype", [](AA* a, Scratch*) { a->cu_seqlens_k.dtype = DType::kFloat32; }, kBad,
        "cu_seqlens_k: expected dtype int32 (sequence offsets), got float32"),
      V("cu_seqlens_q_rank", [](AA* a, Scratch*) { a->cu_seqlens_q.rank = 2; }, kBad,
        "cu_seqlens_q: expected rank 1 [batch + 1], got rank 2"),
      V("cu_seqlens_q_empty", [](AA* a, Scratch*) { a->cu_seqlens_q.shape[0] = 0; }, kBad,
        "cu_seqlens_q: expected shape [batch + 1] with batch >= 0, got [0]"),
      V("cu_seqlens_k_length", [](AA* a, Scratch*) { a->cu_seqlens_k.shape[0] = 3; }, kBad,
        "cu_seqlens_k: expected shape[0] (batch + 1) = 4, got 3"),
      V("max_seqlen_q_negative", [](AA* a, Scratch*) { a->max_seqlen_q = -1; }, kBad,
        "max_seqlen_q: expected a value in [0, 2^31), got -1"),
      V("max_seqlen_k_too_large", [](AA* a, Scratch*) { a->max_seqlen_k = k2Pow31; }, kBad,
        "max_seqlen_k: expected a value in [0, 2^31), got 2147483648"),
      V("cu_seqlens_q_negative_start",
        [](AA* a, Scratch* s) { a->cu_seqlens_q.data = s->ints({-1, 2, 4, 6}); }, kBad,
        "cu_seqlens_q: expected element 0 >= 0, got -1"),
      V("cu_seqlens_k_decreasing", [](AA* a, Scratch* s) { a->cu_seqlens_k.data = s->ints({0, 5, 3, 6}); },
        kBad, "cu_seqlens_k: expected non-decreasing values, got 5 then 3 at index 1"),
      V("max_seqlen_q_below_a_length",
        [](AA* a, Scratch* s) {
          a->cu_seqlens_q.data = s->ints({0, 5, 5, 5});
          a->max_seqlen_q = 4;
        },
        kBad, "max_seqlen_q: expected at least every sequence's length, got 4 but sequence 0 has 5"),
      V("max_seqlen_k_below_a_length",
        [](AA* a, Scratch* s) {
          a->cu_seqlens_k.data = s->ints({0, 1, 9, 9});
          a->max_seqlen_k = 7;
        },
        kBad, "max_seqlen_k: expected at least every sequence's length, got 7 but sequence 1 has 8"),
      V("cu_seqlens_q_past_total",
        [](AA* a, Scratch* s) {
          a->cu_seqlens_q.data = s->ints({0, 0, 0, static_cast<int32_t>(a->q.shape[0] + 1)});
          a->max_seqlen_q = a->q.shape[0] + 1;
        },
        kBad, "cu_seqlens_q: expected the last element <= "),
      V("cu_seqlens_k_past_total",
        [](AA* a, Scratch* s) {
          a->cu_seqlens_k.data = s->ints({0, 0, 0, static_cast<int32_t>(a->k.shape[0] + 1)});
          a->max_seqlen_k = a->k.shape[0] + 1;
        },
        kBad, "cu_seqlens_k: expected the last element <= "),
      V("varlen_lse_rank", [](AA* a, Scratch*) { a->lse.rank = 3; }, kBad,
        "lse: expected rank 2 [heads, total_q], got rank 3"),
      V("varlen_lse_heads", [](AA* a, Scratch*) { a->lse.shape[0] = 2; }, kBad,
        "lse: expected shape[0] (heads) = 4, got 2"),
      V("varlen_lse_total_q", [](AA* a, Scratch*) { a->lse.shape[1] -= 1; }, kBad,
        "lse: expected shape[1] (total_q) = "),
      V("varlen_cuda_kernel_on_cpu", [](AA* a, Scratch*) { a->kernel = Kernel::kFa1; }, kUnsup,
        "kernel 'fa1': runs on CUDA tensors; q is on the CPU"),
  };
}

void PrintTo(const BadAttention& c, std::ostream* os) { *os << c.name; }

class BadAttentionArgs : public ::testing::TestWithParam<BadAttention> {};

TEST_P(BadAttentionArgs, RejectedWithoutWriting) {
  const BadAttention& c = GetParam();
  if (c.needs_gpu && !gpu_available()) GTEST_SKIP() << "CUDA layout rules need a CUDA device to be named";
  std::unique_ptr<AttentionRun> run = baseline_attention(c.varlen);
  ASSERT_NE(run, nullptr);
  const AttentionArgs base = run->args(Kernel::kAuto);
  AttentionArgs args = base;
  Scratch scratch;
  c.mutate(&args, &scratch);
  poison(base.out);
  poison(base.lse);

  expect_rejected(c.varlen ? attention_varlen(args) : attention(args), c.code, c.message, base.out, base.lse);

  // select_kernel() and attention_workspace_size() validate the same way.
  Kernel k = Kernel::kAuto;
  size_t bytes = 0;
  EXPECT_EQ(select_kernel(args, c.varlen, &k).code(), c.code);
  EXPECT_EQ(attention_workspace_size(args, c.varlen, &bytes).code(), c.code);
}

INSTANTIATE_TEST_SUITE_P(Rules, BadAttentionArgs, ::testing::ValuesIn(attention_table()),
                         [](const ::testing::TestParamInfo<BadAttention>& info) { return sanitize(info.param.name); });

TEST(BadAttentionArgs, BaselinesAreValid) {
  for (bool varlen : {false, true}) {
    std::unique_ptr<AttentionRun> run = baseline_attention(varlen);
    ASSERT_NE(run, nullptr);
    const AttentionArgs a = run->args(Kernel::kAuto);
    const Status st = varlen ? attention_varlen(a) : attention(a);
    EXPECT_TRUE(st.is_ok()) << st.message();
  }
}

}  // namespace
}  // namespace testing
}  // namespace sfa
