// The harness itself: the tables are well formed and a run poisons, verifies and reports.
#include <gtest/gtest.h>

#include "testing.h"

namespace sfa::testing {
namespace {

TEST(Harness, SeedsAreFreshPerCall) {
  const uint64_t a = next_seed(), b = next_seed();
  EXPECT_NE(a, b);
}

TEST(Harness, TablesAreNonEmpty) {
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    for (bool small : {true, false}) {
      EXPECT_FALSE(attention_case_table(t, small).empty());
      EXPECT_FALSE(decode_case_table(t, small).empty());
    }
  }
}

}  // namespace
}  // namespace sfa::testing
