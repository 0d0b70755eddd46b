// Helpers for the bad-argument tests: valid baseline arguments from the harness, byte-level
// poisoning of output views, the rejected-call check, and stable storage for replacement buffers.
#pragma once

#include <cctype>
#include <cstdint>
#include <cstring>
#include <deque>
#include <initializer_list>
#include <limits>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "testing.h"

namespace sfa {
// Readable status codes in gtest messages.
inline void PrintTo(StatusCode code, std::ostream* os) { *os << status_code_name(code); }
}  // namespace sfa

namespace sfa::testing {

constexpr int64_t k2Pow31 = int64_t{1} << 31;
constexpr int64_t k2Pow32 = int64_t{1} << 32;
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr StatusCode kBad = StatusCode::kInvalidArgument;
constexpr StatusCode kUnsup = StatusCode::kUnsupported;

// A request for a CUDA device that does not exist: unsupported without CUDA, else a bad index.
inline StatusCode missing_device_code() {
  return built_with_cuda() ? StatusCode::kInvalidArgument : StatusCode::kUnsupported;
}
inline std::string missing_device_message() {
  return built_with_cuda() ? "q: expected a CUDA device index in [0, " : "but sfa was built without CUDA";
}

// A test name from free text.
inline std::string sanitize(const std::string& s) {
  std::string out;
  for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

// Bytes a view spans (0 for an empty view).
inline size_t span_bytes(const TensorView& t) {
  if (t.data == nullptr || t.numel() == 0) return 0;
  int64_t last = 0;
  for (int i = 0; i < t.rank; ++i) last += (t.shape[i] - 1) * t.stride[i];
  return static_cast<size_t>(last + 1) * dtype_size(t.dtype);
}

inline void poison(const TensorView& t) { std::memset(t.data, 0xFF, span_bytes(t)); }

// Every byte the view spans is still 0xFF.
inline bool untouched(const TensorView& t) {
  const auto* p = static_cast<const unsigned char*>(t.data);
  const size_t n = span_bytes(t);
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != 0xFF) return false;
  }
  return true;
}

// Replacement buffers that live as long as the test.
class Scratch {
 public:
  int32_t* ints(std::vector<int32_t> v) {
    ints_.push_back(std::move(v));
    return ints_.back().data();
  }
  float* floats(size_t n) {
    floats_.emplace_back(n, 0.0f);
    return floats_.back().data();
  }

 private:
  std::deque<std::vector<int32_t>> ints_;
  std::deque<std::vector<float>> floats_;
};

// A rejected call: the expected code, a message containing `message`, and out / lse (poisoned
// before the call) left as they were.
inline void expect_rejected(const Status& st, StatusCode code, const std::string& message, const TensorView& out,
                            const TensorView& lse) {
  EXPECT_EQ(st.code(), code) << st.message();
  EXPECT_NE(st.message().find(message), std::string::npos)
      << "message: " << st.message() << "\nexpected to contain: " << message;
  EXPECT_TRUE(untouched(out)) << "out was written by a failing call";
  EXPECT_TRUE(untouched(lse)) << "lse was written by a failing call";
}

inline void set_shape(TensorView* t, std::initializer_list<int64_t> shape) {
  int i = 0;
  for (int64_t s : shape) t->shape[i++] = s;
}

// Valid CPU arguments (fp16, small) for each entry point, built on harness runs.
inline std::unique_ptr<AttentionRun> baseline_attention(bool varlen) {
  AttentionCase c;
  c.dtype = DType::kFloat16;
  c.batch = varlen ? 3 : 2;
  c.seqlen_q = 5;
  c.seqlen_k = 7;
  c.heads = 4;
  c.heads_kv = 2;
  c.head_dim = 16;
  c.varlen = varlen;
  std::unique_ptr<AttentionRun> run;
  const Status st = AttentionRun::create(c, Device::cpu(), 1, &run);
  return st ? std::move(run) : nullptr;
}

inline std::unique_ptr<DecodeRun> baseline_decode(bool paged) {
  DecodeCase c;
  c.dtype = DType::kFloat16;
  c.batch = 2;
  c.seqlen_q = 2;
  c.heads = 4;
  c.heads_kv = 2;
  c.head_dim = 16;
  c.kv_len = 10;
  c.ragged = true;
  c.page_size = paged ? 4 : 0;
  std::unique_ptr<DecodeRun> run;
  const Status st = DecodeRun::create(c, Device::cpu(), 1, &run);
  return st ? std::move(run) : nullptr;
}

}  // namespace sfa::testing
