// Kernel selection: the only place that decides which kernel runs and how many splits decode uses.
#pragma once

#include <cstddef>

#include "common/problem.h"
#include "sfa/sfa.h"

namespace sfa {

// Whether `kernel` belongs to the CPU backend.
bool is_cpu_kernel(Kernel kernel);

// Maps validated arguments (+ the device's properties) to a kernel. A named kernel that cannot
// serve the arguments yields kUnsupported with the reason; kAuto picks the fastest that can.
Status select_attention(const AttentionProblem& p, Device device, bool varlen, Kernel requested,
                        Kernel* kernel);
Status select_decode(const DecodeProblem& p, Device device, Kernel requested, Kernel* kernel);

// The number of KV splits decode runs with: the caller's num_splits, or the heuristic for the
// kernel when it is 0.
int decode_num_splits(const DecodeProblem& p, Device device, Kernel kernel);

// Workspace bytes for a selected kernel (0 when it needs none).
size_t attention_workspace_bytes(const AttentionProblem& p, Kernel kernel);
size_t decode_workspace_bytes(const DecodeProblem& p, int num_splits);
// Carves the decode workspace into partial outputs and partial LSE (see DecodeProblem).
void bind_decode_workspace(DecodeProblem* p, void* workspace);

}  // namespace sfa
