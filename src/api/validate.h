// Argument validation: the only place where public arguments are checked.
//
// Each function checks everything about its entry point's arguments that can be checked without
// touching device memory, and on success fills the flat problem struct the backends consume.
// Messages name the argument, the expected and the given value.
#pragma once

#include "common/problem.h"
#include "sfa/sfa.h"

namespace sfa {

Status validate_attention(const AttentionArgs& args, bool varlen, AttentionProblem* problem,
                          Device* device);
// Everything but num_splits and the workspace pointers, which depend on the selected kernel.
Status validate_decode(const DecodeArgs& args, DecodeProblem* problem, Device* device);

}  // namespace sfa
