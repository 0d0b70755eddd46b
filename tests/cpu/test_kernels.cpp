// The CPU kernels against the float64 reference over the case tables (small and full), for every
// dtype:
// cpu-flash (attention and attention_varlen) and cpu-decode. Every case checks out and lse
// against the oracle, that every output element was written (outputs are poisoned with NaN),
// and prints its seed.
#include <gtest/gtest.h>

#include <cctype>
#include <iostream>
#include <string>

#include "testing.h"

namespace sfa::testing {
namespace {

template <typename Case>
struct Param {
  Case c;
  int index;
};

template <typename Case>
void PrintTo(const Param<Case>& p, std::ostream* os) {
  *os << p.c.describe();
}

std::string test_name(const std::string& description, int index) {
  std::string name = std::to_string(index) + "_";
  for (char ch : description) name += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
  return name;
}

template <typename Case, typename Table>
std::vector<Param<Case>> all_dtypes(Table table) {
  std::vector<Param<Case>> v;
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    for (const Case& c : table(t)) v.push_back({c, static_cast<int>(v.size())});
  }
  return v;
}

void expect_pass(const CaseResult& r) {
  std::cout << r.summary() << "\n";
  EXPECT_TRUE(r.passed()) << r.summary();
}

using AttentionParam = Param<AttentionCase>;
using DecodeParam = Param<DecodeCase>;

class CpuFlash : public ::testing::TestWithParam<AttentionParam> {};
class CpuDecode : public ::testing::TestWithParam<DecodeParam> {};

TEST_P(CpuFlash, MatchesReference) {
  expect_pass(run_attention_case(GetParam().c, Kernel::kCpuFlash, Device::cpu(), next_seed()));
}

TEST_P(CpuDecode, MatchesReference) {
  expect_pass(run_decode_case(GetParam().c, Kernel::kCpuDecode, Device::cpu(), next_seed()));
}

INSTANTIATE_TEST_SUITE_P(
    Table, CpuFlash,
    ::testing::ValuesIn(all_dtypes<AttentionCase>([](DType t) { return attention_case_table(t, true); })),
    [](const ::testing::TestParamInfo<AttentionParam>& info) {
      return test_name(info.param.c.describe(), info.param.index);
    });

// The full tables add the long sequences (1025, kv 32k) and large head dims.
INSTANTIATE_TEST_SUITE_P(
    FullTable, CpuFlash,
    ::testing::ValuesIn(all_dtypes<AttentionCase>([](DType t) { return attention_case_table(t, false); })),
    [](const ::testing::TestParamInfo<AttentionParam>& info) {
      return test_name(info.param.c.describe(), info.param.index);
    });

INSTANTIATE_TEST_SUITE_P(
    FullTable, CpuDecode,
    ::testing::ValuesIn(all_dtypes<DecodeCase>([](DType t) { return decode_case_table(t, false); })),
    [](const ::testing::TestParamInfo<DecodeParam>& info) {
      return test_name(info.param.c.describe(), info.param.index);
    });

INSTANTIATE_TEST_SUITE_P(
    Table, CpuDecode,
    ::testing::ValuesIn(all_dtypes<DecodeCase>([](DType t) { return decode_case_table(t, true); })),
    [](const ::testing::TestParamInfo<DecodeParam>& info) {
      return test_name(info.param.c.describe(), info.param.index);
    });

}  // namespace
}  // namespace sfa::testing
