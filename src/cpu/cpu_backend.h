// The CPU backend's entry points. Each receives a validated problem (src/api/validate.cpp) whose
// pointers are host memory, and writes every element of out (and lse when requested).
#pragma once

#include "common/problem.h"

namespace sfa::cpu {

// softmax(S) V with float64 accumulation: the oracle every other kernel is tested against.
Status reference_attention(const AttentionProblem& p);
Status reference_decode(const DecodeProblem& p);

// FlashAttention-2 on the CPU: Q tiles against K/V tiles, online softmax in float32, memory
// independent of seqlen^2, multithreaded over (batch, head, query tile).
Status flash_attention(const AttentionProblem& p);

// Split-KV decode: each split writes a partial output and its LSE to p.workspace_out /
// p.workspace_lse (when p.num_splits > 1), then the splits are merged with MergeState.
Status split_kv_decode(const DecodeProblem& p);

// Threads the CPU kernels use (hardware concurrency, or SFA_NUM_THREADS when set).
int num_threads();

}  // namespace sfa::cpu
