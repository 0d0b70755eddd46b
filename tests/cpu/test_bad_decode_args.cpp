// decode(): one case per validation rule (contiguous and paged caches) and per selection/entry
// rule, as in test_bad_args.cpp: status code, a message naming the argument and the expected
// value, agreement of select_kernel()/decode_workspace_size(), and untouched out and lse.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "bad_args.h"

namespace sfa::testing {
namespace {

struct BadDecode {
  std::string name;
  bool paged;
  std::function<void(DecodeArgs*, Launch*, Scratch*)> mutate;
  StatusCode code;
  std::string message;
  bool entry_only = false;  // a rule of the call itself (the workspace), not of the arguments
};

void PrintTo(const BadDecode& c, std::ostream* os) { *os << c.name; }

using DA = DecodeArgs;
using LA = Launch;

BadDecode C(std::string name, std::function<void(DA*, LA*, Scratch*)> f, StatusCode code, std::string message) {
  return {std::move(name), false, std::move(f), code, std::move(message)};
}
BadDecode P(std::string name, std::function<void(DA*, LA*, Scratch*)> f, StatusCode code, std::string message) {
  return {std::move(name), true, std::move(f), code, std::move(message)};
}
BadDecode W(std::string name, std::function<void(DA*, LA*, Scratch*)> f, std::string message) {
  return {std::move(name), false, std::move(f), kBad, std::move(message), true};
}

std::vector<BadDecode> decode_table() {
  return {
      C("q_dtype_int32", [](DA* a, LA*, Scratch*) { a->q.dtype = DType::kInt32; }, kBad,
        "q: expected dtype float32, float16 or bfloat16, got int32"),
      C("q_missing_cuda_device", [](DA* a, LA*, Scratch*) { a->q.device = Device::cuda(99); },
        missing_device_code(), missing_device_message()),
      C("k_cache_other_device", [](DA* a, LA*, Scratch*) { a->k_cache.device = Device::cuda(0); }, kBad,
        "k_cache: expected device cpu (the device of q), got cuda:0"),
      C("v_cache_dtype", [](DA* a, LA*, Scratch*) { a->v_cache.dtype = DType::kFloat32; }, kBad,
        "v_cache: expected dtype float16 (the dtype of q), got float32"),
      C("out_rank", [](DA* a, LA*, Scratch*) { a->out.rank = 3; }, kBad,
        "out: expected rank 4 [batch, seqlen_q, heads, head_dim], got rank 3"),
      C("k_cache_rank", [](DA* a, LA*, Scratch*) { a->k_cache.rank = 3; }, kBad,
        "k_cache: expected rank 4 [batch, capacity, heads_kv, head_dim], got rank 3"),
      C("q_null_data", [](DA* a, LA*, Scratch*) { a->q.data = nullptr; }, kBad,
        "q: data is null for a tensor of shape [2, 2, 4, 16]"),
      C("head_dim", [](DA* a, LA*, Scratch*) { a->q.shape[3] = 20; }, kBad,
        "q: expected head_dim (last extent) a multiple of 8 in [8, 256], got 20"),
      C("heads_zero", [](DA* a, LA*, Scratch*) { a->q.shape[2] = 0; }, kBad, "q: expected heads >= 1, got 0"),
      C("heads_kv_not_dividing", [](DA* a, LA*, Scratch*) { a->k_cache.shape[2] = a->v_cache.shape[2] = 3; },
        kBad, "k_cache: expected heads_kv (shape[2]) >= 1 dividing heads = 4, got 3"),
      C("v_cache_like_k_cache", [](DA* a, LA*, Scratch*) { a->v_cache.shape[1] = 9; }, kBad,
        "v_cache: expected shape[1] (like k_cache) = 10, got 9"),
      C("out_like_q", [](DA* a, LA*, Scratch*) { a->out.shape[2] = 2; }, kBad,
        "out: expected shape[2] (like q) = 4, got 2"),
      C("k_cache_head_dim", [](DA* a, LA*, Scratch*) { a->k_cache.shape[3] = a->v_cache.shape[3] = 8; }, kBad,
        "k_cache: expected shape[3] (head_dim) = 16, got 8"),
      C("batch_beyond_int32",
        [](DA* a, LA*, Scratch*) {
          a->q.shape[0] = a->out.shape[0] = a->k_cache.shape[0] = a->v_cache.shape[0] = k2Pow31;
        },
        kBad, "batch: expected at most 2147483647, got 2147483648"),
      C("seqlen_q_beyond_int32", [](DA* a, LA*, Scratch*) { a->q.shape[1] = a->out.shape[1] = k2Pow31; }, kBad,
        "seqlen_q: expected at most 2147483647, got 2147483648"),
      C("heads_beyond_int32", [](DA* a, LA*, Scratch*) { a->q.shape[2] = a->out.shape[2] = k2Pow32; }, kBad,
        "heads: expected at most 2147483647, got 4294967296"),
      C("batch_times_heads_beyond_int32",
        [](DA* a, LA*, Scratch*) {
          a->q.shape[0] = a->out.shape[0] = a->k_cache.shape[0] = a->v_cache.shape[0] = 65536;
          a->q.shape[2] = a->out.shape[2] = 65536;
        },
        kBad, "q: batch * heads = 4294967296 exceeds what the kernels index"),
      C("k_cache_batch", [](DA* a, LA*, Scratch*) { a->k_cache.shape[0] = a->v_cache.shape[0] = 1; }, kBad,
        "k_cache: expected shape[0] (batch) = 2, got 1"),
      C("capacity_beyond_int32", [](DA* a, LA*, Scratch*) { a->k_cache.shape[1] = a->v_cache.shape[1] = k2Pow31; },
        kBad, "k_cache capacity: expected at most 2147483647, got 2147483648"),
      C("cache_seqlens_device", [](DA* a, LA*, Scratch*) { a->cache_seqlens.device = Device::cuda(0); }, kBad,
        "cache_seqlens: expected device cpu (the device of q), got cuda:0"),
      C("cache_seqlens_dtype", [](DA* a, LA*, Scratch*) { a->cache_seqlens.dtype = DType::kFloat32; }, kBad,
        "cache_seqlens: expected dtype int32 (lengths), got float32"),
      C("cache_seqlens_rank", [](DA* a, LA*, Scratch*) { a->cache_seqlens.rank = 2; }, kBad,
        "cache_seqlens: expected rank 1 [batch], got rank 2"),
      C("cache_seqlens_batch", [](DA* a, LA*, Scratch* s) {
          const int64_t n = 3;
          a->cache_seqlens = make_tensor(s->ints({1, 2, 3}), DType::kInt32, Device::cpu(), 1, &n);
        },
        kBad, "cache_seqlens: expected shape[0] (batch) = 2, got 3"),
      C("cache_seqlens_past_capacity", [](DA* a, LA*, Scratch* s) { a->cache_seqlens.data = s->ints({3, 11}); },
        kBad, "cache_seqlens: expected values in [0, 10] (the cache capacity), got 11 at index 1"),
      C("cache_seqlens_negative", [](DA* a, LA*, Scratch* s) { a->cache_seqlens.data = s->ints({-1, 4}); }, kBad,
        "cache_seqlens: expected values in [0, 10] (the cache capacity), got -1 at index 0"),
      C("lse_device", [](DA* a, LA*, Scratch*) { a->lse.device = Device::cuda(0); }, kBad,
        "lse: expected device cpu (the device of q), got cuda:0"),
      C("lse_dtype", [](DA* a, LA*, Scratch*) { a->lse.dtype = DType::kFloat16; }, kBad,
        "lse: expected dtype float32 (log-sum-exp is float32), got float16"),
      C("lse_rank", [](DA* a, LA*, Scratch*) { a->lse.rank = 2; }, kBad,
        "lse: expected rank 3 [batch, heads, seqlen_q], got rank 2"),
      C("lse_batch", [](DA* a, LA*, Scratch*) { a->lse.shape[0] = 1; }, kBad, "lse: expected shape[0] (batch) = 2, got 1"),
      C("lse_heads", [](DA* a, LA*, Scratch*) { a->lse.shape[1] = 8; }, kBad, "lse: expected shape[1] (heads) = 4, got 8"),
      C("lse_seqlen_q", [](DA* a, LA*, Scratch*) { a->lse.shape[2] = 1; }, kBad,
        "lse: expected shape[2] (seqlen_q) = 2, got 1"),
      C("softmax_scale_nan", [](DA* a, LA*, Scratch*) { a->softmax_scale = kNaN; }, kBad,
        "softmax_scale: expected a finite value (0 = 1/sqrt(head_dim))"),
      C("softcap_negative", [](DA* a, LA*, Scratch*) { a->softcap = -2.0f; }, kBad,
        "softcap: expected a finite value >= 0 (0 = off), got -2"),
      C("window_left", [](DA* a, LA*, Scratch*) { a->window_left = -3; }, kBad,
        "window_left: expected -1 (unbounded) or >= 0, got -3"),
      C("num_splits_negative", [](DA* a, LA*, Scratch*) { a->num_splits = -1; }, kBad,
        "num_splits: expected a value in [0, 256] (0 = heuristic), got -1"),
      C("num_splits_too_many", [](DA* a, LA*, Scratch*) { a->num_splits = kMaxSplits + 1; }, kBad,
        "num_splits: expected a value in [0, 256] (0 = heuristic), got 257"),
      C("unknown_kernel_value", [](DA* a, LA*, Scratch*) { a->kernel = static_cast<Kernel>(-3); }, kBad,
        "kernel: unknown kernel value -3"),
      C("cuda_kernel_on_cpu", [](DA* a, LA*, Scratch*) { a->kernel = Kernel::kDecodeFast; }, kUnsup,
        "kernel 'decode_fast': runs on CUDA tensors; q is on the CPU"),
      C("prefill_kernel_through_decode", [](DA* a, LA*, Scratch*) { a->kernel = Kernel::kCpuFlash; }, kUnsup,
        "kernel 'cpu-flash': is a prefill kernel; call attention()"),
      W("workspace_missing", [](DA* a, LA*, Scratch*) { a->num_splits = 2; },
        "workspace: expected at least "),
      W("workspace_too_small",
        [](DA* a, LA* l, Scratch* s) {
          a->num_splits = 2;
          l->workspace = s->floats(4);
          l->workspace_bytes = 16;
        },
        "bytes, got 16 bytes"),
      W("workspace_misaligned",
        [](DA* a, LA* l, Scratch* s) {
          a->num_splits = 2;
          l->workspace = reinterpret_cast<char*>(s->floats(1 << 16)) + 4;
          l->workspace_bytes = (1 << 18) - 16;
        },
        "workspace: expected a 16-byte aligned pointer"),

      // Paged caches.
      P("block_table_device", [](DA* a, LA*, Scratch*) { a->block_table.device = Device::cuda(0); }, kBad,
        "block_table: expected device cpu (the device of q), got cuda:0"),
      P("block_table_dtype", [](DA* a, LA*, Scratch*) { a->block_table.dtype = DType::kFloat32; }, kBad,
        "block_table: expected dtype int32 (page indices), got float32"),
      P("block_table_rank", [](DA* a, LA*, Scratch*) { a->block_table.rank = 1; }, kBad,
        "block_table: expected rank 2 [batch, max_pages_per_seq], got rank 1"),
      P("block_table_batch", [](DA* a, LA*, Scratch*) { a->block_table.shape[0] = 1; }, kBad,
        "block_table: expected shape[0] (batch) = 2, got 1"),
      P("page_size_zero", [](DA* a, LA*, Scratch*) { a->k_cache.shape[1] = a->v_cache.shape[1] = 0; }, kBad,
        "k_cache: expected page_size (shape[1]) >= 1, got 0"),
      P("page_size_beyond_int32", [](DA* a, LA*, Scratch*) { a->k_cache.shape[1] = a->v_cache.shape[1] = k2Pow31; },
        kBad, "page_size: expected at most 2147483647, got 2147483648"),
      P("max_pages_beyond_int32", [](DA* a, LA*, Scratch*) { a->block_table.shape[1] = k2Pow31; }, kBad,
        "block_table max_pages_per_seq: expected at most 2147483647, got 2147483648"),
      P("paged_capacity_beyond_int32", [](DA* a, LA*, Scratch*) { a->block_table.shape[1] = int64_t{1} << 30; }, kBad,
        "block_table: max_pages_per_seq * page_size = 1073741824 * 4 exceeds 2^31 - 1 cache positions"),
      P("paged_cache_seqlens_past_capacity", [](DA* a, LA*, Scratch* s) { a->cache_seqlens.data = s->ints({13, 0}); },
        kBad, "cache_seqlens: expected values in [0, 12] (the cache capacity), got 13 at index 0"),
      P("page_index_past_pool",
        [](DA* a, LA*, Scratch* s) {
          std::vector<int32_t> table(static_cast<const int32_t*>(a->block_table.data),
                                     static_cast<const int32_t*>(a->block_table.data) + 6);
          a->cache_seqlens.data = s->ints({10, 10});
          table[4] = static_cast<int32_t>(a->k_cache.shape[0]);
          a->block_table.data = s->ints(table);
        },
        kBad, "block_table: expected page indices in [0, 9), got 9 at [1, 1]"),
      P("page_index_negative",
        [](DA* a, LA*, Scratch* s) {
          a->cache_seqlens.data = s->ints({5, 0});
          a->block_table.data = s->ints({0, -1, 2, 3, 4, 5});
        },
        kBad, "block_table: expected page indices in [0, 9), got -1 at [0, 1]"),
  };
}

class BadDecodeArgs : public ::testing::TestWithParam<BadDecode> {};

TEST_P(BadDecodeArgs, RejectedWithoutWriting) {
  const BadDecode& c = GetParam();
  std::unique_ptr<DecodeRun> run = baseline_decode(c.paged);
  ASSERT_NE(run, nullptr);
  const DecodeArgs base = run->args(Kernel::kAuto);
  DecodeArgs args = base;
  Launch launch;
  Scratch scratch;
  c.mutate(&args, &launch, &scratch);
  poison(base.out);
  poison(base.lse);

  expect_rejected(decode(args, launch), c.code, c.message, base.out, base.lse);

  // select_kernel() and decode_workspace_size() validate the same way (the workspace itself is
  // only checked by the call).
  Kernel k = Kernel::kAuto;
  size_t bytes = 0;
  const StatusCode expected = c.entry_only ? StatusCode::kOk : c.code;
  EXPECT_EQ(select_kernel(args, &k).code(), expected);
  EXPECT_EQ(decode_workspace_size(args, &bytes).code(), expected);
  if (c.entry_only) {
    EXPECT_GT(bytes, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Rules, BadDecodeArgs, ::testing::ValuesIn(decode_table()),
                         [](const ::testing::TestParamInfo<BadDecode>& info) { return sanitize(info.param.name); });

TEST(BadDecodeArgs, BaselinesAreValid) {
  for (bool paged : {false, true}) {
    std::unique_ptr<DecodeRun> run = baseline_decode(paged);
    ASSERT_NE(run, nullptr);
    const Status st = decode(run->args(Kernel::kAuto));
    EXPECT_TRUE(st.is_ok()) << st.message();
  }
}

}  // namespace
}  // namespace sfa::testing
