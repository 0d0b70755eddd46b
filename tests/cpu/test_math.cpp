// Unit tests of the math every backend shares (src/common/attention_math.h) and of the host
// dtype conversions (src/common/dtype_convert.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "common/attention_math.h"
#include "common/dtype_convert.h"
#include "harness.h"

namespace sfa {
namespace {

// ---- visible_keys: the mask of sfa.h, written as a predicate --------------------------------

bool sees(int64_t i, int64_t j, int64_t sq, int64_t sk, int64_t wl, int64_t wr) {
  const int64_t off = sk - sq;
  return j >= 0 && j < sk && (wr < 0 || j <= i + off + wr) && (wl < 0 || j >= i + off - wl);
}

TEST(VisibleKeys, MatchesThePredicateExhaustively) {
  for (int64_t sq = 0; sq <= 6; ++sq) {
    for (int64_t sk = 0; sk <= 6; ++sk) {
      for (int64_t wl = -1; wl <= 4; ++wl) {
        for (int64_t wr = -1; wr <= 4; ++wr) {
          for (int64_t i = 0; i < sq; ++i) {
            const KeyRange r = visible_keys(i, sq, sk, wl, wr);
            for (int64_t j = -2; j < sk + 2; ++j) {
              const bool in = !r.empty() && j >= r.lo && j < r.hi;
              ASSERT_EQ(in, sees(i, j, sq, sk, wl, wr))
                  << "i=" << i << " j=" << j << " sq=" << sq << " sk=" << sk << " wl=" << wl << " wr=" << wr;
            }
            if (!r.empty()) {
              EXPECT_GE(r.lo, 0);
              EXPECT_LE(r.hi, sk);
            }
          }
        }
      }
    }
  }
}

TEST(VisibleKeys, EdgeCases) {
  // No mask: every key.
  EXPECT_EQ(visible_keys(3, 5, 9, -1, -1).lo, 0);
  EXPECT_EQ(visible_keys(3, 5, 9, -1, -1).hi, 9);
  // Causal, square: keys 0..i.
  EXPECT_EQ(visible_keys(4, 10, 10, -1, 0).hi, 5);
  // Causal, seqlen_q > seqlen_k (bottom-right): the first rows see nothing.
  EXPECT_TRUE(visible_keys(0, 5, 3, -1, 0).empty());
  EXPECT_TRUE(visible_keys(1, 5, 3, -1, 0).empty());
  EXPECT_EQ(visible_keys(2, 5, 3, -1, 0).hi, 1);
  EXPECT_EQ(visible_keys(4, 5, 3, -1, 0).hi, 3);
  // Causal, seqlen_q < seqlen_k: the last query sees every key.
  EXPECT_EQ(visible_keys(1, 2, 5, -1, 0).hi, 5);
  EXPECT_EQ(visible_keys(0, 2, 5, -1, 0).hi, 4);
  // Window (left 2, right 1) around the diagonal, and the diagonal alone.
  EXPECT_EQ(visible_keys(5, 10, 10, 2, 1).lo, 3);
  EXPECT_EQ(visible_keys(5, 10, 10, 2, 1).hi, 7);
  EXPECT_EQ(visible_keys(5, 10, 10, 0, 0).lo, 5);
  EXPECT_EQ(visible_keys(5, 10, 10, 0, 0).hi, 6);
  // A left window clipped at key 0, a right window clipped at seqlen_k.
  EXPECT_EQ(visible_keys(1, 10, 10, 5, 20).lo, 0);
  EXPECT_EQ(visible_keys(1, 10, 10, 5, 20).hi, 10);
  // No keys at all.
  EXPECT_TRUE(visible_keys(0, 1, 0, -1, -1).empty());
  // A window entirely before the keys (seqlen_q much larger than seqlen_k).
  EXPECT_TRUE(visible_keys(0, 100, 3, 1, 0).empty());
}

TEST(Softcap, BoundsAndIdentity) {
  EXPECT_EQ(apply_softcap(123.0f, 0.0f), 123.0f);
  EXPECT_EQ(apply_softcap(-7.0, 0.0), -7.0);
  EXPECT_LT(std::fabs(apply_softcap(1e6f, 5.0f)), 5.0f + 1e-6f);
  EXPECT_NEAR(apply_softcap(0.01f, 30.0f), 0.01f, 1e-8f);  // ~identity for small scores
  EXPECT_NEAR(apply_softcap(3.0f, 5.0f), static_cast<float>(apply_softcap(3.0, 5.0)), 1e-6f);
}

// ---- MergeState: merging partial softmaxes equals the softmax over the union ------------------

struct Partial {
  std::vector<double> o;
  double lse;
};

Partial softmax_partial(const std::vector<double>& s, const std::vector<std::vector<double>>& v, size_t lo,
                        size_t hi) {
  Partial p{std::vector<double>(v[0].size(), 0.0), -INFINITY};
  if (lo >= hi) return p;
  double m = -INFINITY;
  for (size_t j = lo; j < hi; ++j) m = std::max(m, s[j]);
  double sum = 0;
  for (size_t j = lo; j < hi; ++j) {
    const double e = std::exp(s[j] - m);
    sum += e;
    for (size_t d = 0; d < p.o.size(); ++d) p.o[d] += e * v[j][d];
  }
  for (double& x : p.o) x /= sum;
  p.lse = m + std::log(sum);
  return p;
}

TEST(MergeState, EqualsSoftmaxOverTheUnion) {
  testing::detail::Rng rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    const size_t n = 1 + rng.uniform_int(0, 200), dim = 8;
    const double spread = trial % 5 == 0 ? 40.0 : 3.0;  // large score gaps too
    std::vector<double> s(n);
    std::vector<std::vector<double>> v(n, std::vector<double>(dim));
    for (size_t j = 0; j < n; ++j) {
      s[j] = spread * rng.normal();
      for (double& x : v[j]) x = rng.normal();
    }
    // Cut the keys into chunks, some empty.
    const int splits = 1 + rng.uniform_int(0, 9);
    std::vector<Partial> parts;
    for (int k = 0; k < splits; ++k) {
      const size_t lo = n * k / splits, hi = (k == 1) ? lo : n * (k + 1) / splits;
      parts.push_back(softmax_partial(s, v, lo, hi));
      if (k == 1 && splits > 1) parts.push_back(softmax_partial(s, v, lo, n * (k + 1) / splits));
    }
    MergeState st;
    for (const Partial& p : parts) st.add(static_cast<float>(p.lse));
    std::vector<double> merged(dim, 0.0);
    double weights = 0;
    for (const Partial& p : parts) {
      const float w = st.weight(static_cast<float>(p.lse));
      weights += w;
      for (size_t d = 0; d < dim; ++d) merged[d] += w * p.o[d];
    }
    const Partial whole = softmax_partial(s, v, 0, n);
    EXPECT_NEAR(st.lse(), whole.lse, 1e-5 * std::max(1.0, std::fabs(whole.lse)));
    EXPECT_NEAR(weights, 1.0, 1e-5);
    for (size_t d = 0; d < dim; ++d) EXPECT_NEAR(merged[d], whole.o[d], 1e-5);
  }
}

// The all-at-once form the kernels use when every split's lse is at hand (maximum first, then the
// unnormalised weights) gives the online form's lse and weights, empty splits and rows included.
TEST(MergeState, AllAtOnceEqualsOnline) {
  testing::detail::Rng rng(11);
  for (int trial = 0; trial < 200; ++trial) {
    const int splits = 1 + rng.uniform_int(0, 15);
    std::vector<float> lse(splits);
    for (float& x : lse) {
      x = rng.uniform_int(0, 3) == 0 ? -INFINITY : static_cast<float>((trial % 4 == 0 ? 60.0 : 4.0) * rng.normal());
    }
    if (trial % 10 == 0) std::fill(lse.begin(), lse.end(), -INFINITY);
    MergeState st;
    float max_lse = -INFINITY;
    for (float x : lse) {
      st.add(x);
      max_lse = std::max(max_lse, x);
    }
    float sum = 0.0f;
    for (float x : lse) sum += MergeState::unnormalised_weight(x, max_lse);
    const float merged = MergeState::merged_lse(max_lse, sum);
    if (st.lse() == -INFINITY) {
      EXPECT_EQ(merged, -INFINITY);
    } else {
      EXPECT_NEAR(merged, st.lse(), 1e-5f * std::max(1.0f, std::fabs(st.lse())));
    }
    for (float x : lse) {
      const float w = sum > 0.0f ? MergeState::unnormalised_weight(x, max_lse) / sum : 0.0f;
      EXPECT_NEAR(w, st.weight(x), 1e-6f);
    }
  }
}

TEST(MergeState, AllEmpty) {
  MergeState st;
  st.add(-INFINITY);
  st.add(-INFINITY);
  EXPECT_EQ(st.lse(), -INFINITY);
  EXPECT_EQ(st.weight(-INFINITY), 0.0f);
  MergeState none;
  EXPECT_EQ(none.lse(), -INFINITY);
}

TEST(MergeState, LargeMagnitudes) {
  MergeState st;
  st.add(1000.0f);
  st.add(-INFINITY);
  st.add(1000.0f);
  EXPECT_NEAR(st.lse(), 1000.0f + std::log(2.0f), 1e-3);
  EXPECT_NEAR(st.weight(1000.0f), 0.5f, 1e-6);
  EXPECT_EQ(st.weight(-INFINITY), 0.0f);
}

// ---- OnlineSoftmax: tile by tile equals the two-pass softmax ---------------------------------

TEST(OnlineSoftmax, EqualsTwoPassSoftmax) {
  testing::detail::Rng rng(11);
  for (int trial = 0; trial < 50; ++trial) {
    const int n = 1 + rng.uniform_int(0, 300), tile = 1 + rng.uniform_int(0, 63);
    std::vector<float> s(n), v(n);
    for (int j = 0; j < n; ++j) {
      s[j] = static_cast<float>(4.0 * rng.normal());  // natural-log scores
      v[j] = static_cast<float>(rng.normal());
      if (rng.uniform() < 0.1) s[j] = -INFINITY;  // masked keys
    }
    // Two passes in double.
    double m = -INFINITY, sum = 0, acc = 0;
    for (float x : s) m = std::max<double>(m, x);
    for (int j = 0; j < n; ++j) {
      if (s[j] == -INFINITY) continue;
      sum += std::exp(s[j] - m);
      acc += std::exp(s[j] - m) * v[j];
    }
    // Online, in the log2 domain, one tile at a time.
    OnlineSoftmax st;
    float o = 0.0f;
    for (int j0 = 0; j0 < n; j0 += tile) {
      const int j1 = std::min(n, j0 + tile);
      float tile_max = -INFINITY;
      for (int j = j0; j < j1; ++j) tile_max = std::max(tile_max, s[j] * kLog2e);
      const float alpha = st.rescale(tile_max);
      o *= alpha;
      for (int j = j0; j < j1; ++j) {
        const float p = st.prob(s[j] * kLog2e);
        st.l += p;
        o += p * v[j];
      }
    }
    if (sum == 0) {
      EXPECT_EQ(st.lse(), -INFINITY);
      EXPECT_EQ(st.inv_l(), 0.0f);
      continue;
    }
    EXPECT_NEAR(st.lse(), m + std::log(sum), 1e-4);
    EXPECT_NEAR(o * st.inv_l(), acc / sum, 1e-5);
  }
}

TEST(OnlineSoftmax, MaskedFirstTiles) {
  OnlineSoftmax st;
  EXPECT_EQ(st.rescale(-INFINITY), 1.0f);  // nothing seen yet: alpha stays finite
  EXPECT_EQ(st.prob(-INFINITY), 0.0f);
  EXPECT_EQ(st.lse(), -INFINITY);
  EXPECT_EQ(st.rescale(2.0f), 0.0f);  // exp2(-inf - 2): the (empty) past is dropped
  st.l += st.prob(2.0f);
  EXPECT_EQ(st.l, 1.0f);
  EXPECT_NEAR(st.lse(), 2.0f * kLn2, 1e-6);
}

// ---- dtype conversions ----------------------------------------------------------------------

TEST(DtypeConvert, HalfRoundTripsEveryBitPattern) {
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    const float f = half_bits_to_float(static_cast<uint16_t>(h));
    const uint16_t back = float_to_half_bits(f);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(half_bits_to_float(back))) << h;
      EXPECT_EQ((h & 0x7C00u), 0x7C00u);
    } else {
      ASSERT_EQ(back, h) << "half 0x" << std::hex << h;
    }
  }
}

TEST(DtypeConvert, Bf16RoundTripsEveryBitPattern) {
  for (uint32_t b = 0; b <= 0xFFFF; ++b) {
    const float f = bf16_bits_to_float(static_cast<uint16_t>(b));
    const uint16_t back = float_to_bf16_bits(f);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(bf16_bits_to_float(back))) << b;
    } else {
      ASSERT_EQ(back, b) << "bf16 0x" << std::hex << b;
    }
  }
}

float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

TEST(DtypeConvert, RoundToNearestEven) {
  // Exactly halfway: ties go to the even neighbour; a hair above goes up.
  EXPECT_EQ(float_to_half_bits(1.0f + std::ldexp(1.0f, -11)), 0x3C00);
  EXPECT_EQ(float_to_half_bits(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);
  EXPECT_EQ(float_to_half_bits(std::nextafter(1.0f + std::ldexp(1.0f, -11), 2.0f)), 0x3C01);
  EXPECT_EQ(float_to_bf16_bits(1.0f + std::ldexp(1.0f, -8)), 0x3F80);
  EXPECT_EQ(float_to_bf16_bits(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3F82);
  EXPECT_EQ(float_to_bf16_bits(std::nextafter(1.0f + std::ldexp(1.0f, -8), 2.0f)), 0x3F81);
  // Overflow: the largest half is 65504; 65520 is halfway to 2^16 and rounds to inf.
  EXPECT_EQ(float_to_half_bits(65504.0f), 0x7BFF);
  EXPECT_EQ(float_to_half_bits(65519.0f), 0x7BFF);
  EXPECT_EQ(float_to_half_bits(65520.0f), 0x7C00);
  EXPECT_EQ(float_to_half_bits(-1e9f), 0xFC00);
  EXPECT_EQ(float_to_bf16_bits(std::numeric_limits<float>::max()), 0x7F80);
}

TEST(DtypeConvert, NearestForRandomFloats) {
  testing::detail::Rng rng(3);
  for (int i = 0; i < 200000; ++i) {
    // Magnitudes from subnormal half to beyond the half range.
    const float f = static_cast<float>(rng.normal() * std::ldexp(1.0, rng.uniform_int(-30, 17)));
    const uint16_t h = float_to_half_bits(f);
    const double err = std::fabs(static_cast<double>(half_bits_to_float(h)) - f);
    if ((h & 0x7FFFu) == 0x7C00u) continue;  // overflowed to inf
    for (int step : {-1, 1}) {
      const uint16_t n = static_cast<uint16_t>(h + step);
      if ((n & 0x7FFFu) >= 0x7C00u || ((n ^ h) & 0x8000u)) continue;  // not a finite same-sign neighbour
      const double nerr = std::fabs(static_cast<double>(half_bits_to_float(n)) - f);
      ASSERT_LE(err, nerr) << f;
      if (err == nerr) {
        ASSERT_EQ(h & 1u, 0u) << "tie not to even: " << f;
      }
    }
    const uint16_t b = float_to_bf16_bits(f);
    const double berr = std::fabs(static_cast<double>(bf16_bits_to_float(b)) - f);
    for (int step : {-1, 1}) {
      const uint16_t n = static_cast<uint16_t>(b + step);
      if ((n ^ b) & 0x8000u) continue;
      const double nerr = std::fabs(static_cast<double>(bf16_bits_to_float(n)) - f);
      ASSERT_LE(berr, nerr) << f;
      if (berr == nerr) {
        ASSERT_EQ(b & 1u, 0u) << "tie not to even: " << f;
      }
    }
  }
}

TEST(DtypeConvert, Subnormals) {
  const float smallest = std::ldexp(1.0f, -24);  // half 0x0001
  EXPECT_EQ(half_bits_to_float(0x0001), smallest);
  EXPECT_EQ(half_bits_to_float(0x03FF), 1023 * smallest);  // the largest subnormal
  EXPECT_EQ(half_bits_to_float(0x0400), std::ldexp(1.0f, -14));
  EXPECT_EQ(float_to_half_bits(smallest), 0x0001);
  EXPECT_EQ(float_to_half_bits(smallest / 2), 0x0000);            // tie to even (0)
  EXPECT_EQ(float_to_half_bits(smallest * 1.5f), 0x0002);         // tie to even (2)
  EXPECT_EQ(float_to_half_bits(std::nextafter(smallest / 2, 1.0f)), 0x0001);
  EXPECT_EQ(float_to_half_bits(-smallest), 0x8001);
  EXPECT_EQ(float_to_half_bits(smallest / 4), 0x0000);            // underflow to zero
  EXPECT_EQ(float_to_half_bits(-0.0f), 0x8000);
  EXPECT_EQ(float_to_half_bits(1023.5f * smallest), 0x0400);      // rounds up into the normals
  // bf16 keeps float's exponent range: float subnormals stay subnormal.
  EXPECT_EQ(bf16_bits_to_float(0x0001), bits_to_float(0x00010000u));
  EXPECT_EQ(float_to_bf16_bits(bits_to_float(0x00010000u)), 0x0001);
}

TEST(DtypeConvert, InfAndNan) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(float_to_half_bits(inf), 0x7C00);
  EXPECT_EQ(float_to_half_bits(-inf), 0xFC00);
  EXPECT_TRUE(std::isnan(half_bits_to_float(float_to_half_bits(nan))));
  EXPECT_EQ(half_bits_to_float(0x7C00), inf);
  EXPECT_EQ(half_bits_to_float(0xFC00), -inf);
  EXPECT_TRUE(std::isnan(half_bits_to_float(0x7E00)));
  EXPECT_TRUE(std::isnan(half_bits_to_float(0xFFFF)));  // the harness's poison pattern
  EXPECT_EQ(float_to_bf16_bits(inf), 0x7F80);
  EXPECT_EQ(float_to_bf16_bits(-inf), 0xFF80);
  EXPECT_TRUE(std::isnan(bf16_bits_to_float(float_to_bf16_bits(nan))));
  // A NaN whose payload lives only in the low bits must stay NaN (not round to inf).
  EXPECT_TRUE(std::isnan(bf16_bits_to_float(float_to_bf16_bits(bits_to_float(0x7F800001u)))));
  EXPECT_TRUE(std::isnan(bf16_bits_to_float(0xFFFF)));
}

TEST(DtypeConvert, LoadStoreEveryDtype) {
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    std::vector<unsigned char> buf(4 * sizeof(float));
    store_float(buf.data(), t, 2, 1.5f);
    store_float(buf.data(), t, 3, -0.25f);
    EXPECT_EQ(load_float(buf.data(), t, 2), 1.5f) << dtype_name(t);
    EXPECT_EQ(load_float(buf.data(), t, 3), -0.25f) << dtype_name(t);
  }
}

}  // namespace
}  // namespace sfa
