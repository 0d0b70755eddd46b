// sfa — Simple Flash-Attention: exact, fused attention for CPU and CUDA.
//
// Entry points
//   attention()        dense batches      q [batch, seqlen_q, heads, head_dim]
//                                         k, v [batch, seqlen_k, heads_kv, head_dim]
//   attention_varlen() packed batches     q [total_q, heads, head_dim], k, v [total_k, heads_kv, head_dim]
//                                         cu_seqlens_q [batch + 1], cu_seqlens_k [batch + 1] (int32)
//   decode()           new tokens against a KV cache (contiguous or paged), split-KV
//
// Semantics (identical on every backend)
//   S = softmax_scale * Q K^T                        (scale 0 means 1/sqrt(head_dim))
//   S = softcap * tanh(S / softcap)                  (only when softcap > 0)
//   query row i sees key j when, with off = seqlen_k - seqlen_q (bottom-right alignment),
//       j <= i + off + window_right                  (no bound when window_right < 0)
//       j >= i + off - window_left                   (no bound when window_left  < 0)
//     causal is window_right = 0 (a causal call may still set window_left).
//   P = softmax(S) over visible keys;  out = P V;  lse = log(sum_j exp(S_ij)) (natural log)
//   A row that sees no key (a window past the keys, causal with seqlen_q > seqlen_k, an empty
//   sequence) gives out = 0 and lse = -inf.
//   GQA / MQA: query head h reads kv head h / (heads / heads_kv).
//
// Conventions
//   dtypes: q, k, v, out share float32, float16 or bfloat16; accumulation is float32; lse is float32.
//   Any element strides with the last dimension contiguous (stride 1). CUDA tensors also need a
//   16-byte aligned base pointer and 16-byte multiple strides (vector loads); head_dim is a
//   multiple of 8 in [8, 256].
//   Every entry point validates all arguments before any work and returns a Status whose message
//   names the argument, the expected and the given value. On error nothing is written.
//   No entry point allocates memory or synchronises the host with the device: scratch memory is
//   passed in Launch::workspace, sized by the *_workspace_size() functions, and CUDA work is
//   queued on Launch::stream. This makes every call capturable in a CUDA graph.
#pragma once

#include "sfa/tensor.h"

namespace sfa {

// Kernels, selectable by name ("auto", "fa2_mma", ...). kAuto picks the fastest kernel that
// supports the arguments on their device (see select_kernel()).
enum class Kernel : int32_t {
  kAuto = 0,
  // CPU backend
  kCpuReference,  // naive softmax(S) V, float64 accumulation: the oracle
  kCpuFlash,      // FlashAttention-2 on the CPU: tiled, online softmax, multithreaded
  kCpuDecode,     // split-KV decode with the log-sum-exp merge
  // CUDA backend
  kStandard,    // plain attention: GEMM, softmax, GEMM (needs a seqlen^2 workspace); its first
                // call on a device creates that device's cuBLAS handle, which allocates
  kFa1,         // FlashAttention-1, SIMT float32 (teaching); O, l, m live in the workspace
  kFa2,         // FlashAttention-2, SIMT float32 (teaching)
  kDecode,      // Flash-Decoding, SIMT float32 (teaching)
  kFa2Mma,      // FlashAttention-2 on tensor cores, fp16/bf16, sm80+
  kDecodeFast,  // split-KV decode, fp16/bf16, GQA packing, paged KV
};

const char* kernel_name(Kernel kernel);
// Parses a kernel name ("auto", "cpu-reference", "cpu-flash", "cpu-decode", "standard", "fa1",
// "fa2", "decode", "fa2_mma", "decode_fast"); an unknown name is kInvalidArgument.
Status kernel_from_name(const char* name, Kernel* kernel);

// Where and how a call runs.
struct Launch {
  void* stream = nullptr;      // cudaStream_t for CUDA tensors (nullptr = legacy default stream)
  void* workspace = nullptr;   // scratch on the tensors' device, at least *_workspace_size() bytes
  size_t workspace_bytes = 0;  // 16-byte aligned when non-null
};

struct AttentionArgs {
  TensorView q, k, v;  // inputs
  TensorView out;      // output, like q
  TensorView lse;      // optional output, float32: [batch, heads, seqlen_q]; varlen: [heads, total_q]

  // Varlen only (attention_varlen): int32 [batch + 1] prefix sums of the sequence lengths,
  // on the tensors' device, and the largest length in the batch.
  TensorView cu_seqlens_q, cu_seqlens_k;
  int64_t max_seqlen_q = 0, max_seqlen_k = 0;

  float softmax_scale = 0.0f;  // 0: 1/sqrt(head_dim)
  bool causal = false;
  int64_t window_left = -1, window_right = -1;  // -1: unbounded
  float softcap = 0.0f;                         // 0: off
  Kernel kernel = Kernel::kAuto;
};

Status attention(const AttentionArgs& args, const Launch& launch = {});
Status attention_varlen(const AttentionArgs& args, const Launch& launch = {});
// Scratch bytes attention()/attention_varlen() need for these arguments (0 for the FA-2 kernels;
// fa1 keeps its O, l, m there, standard its score matrix).
Status attention_workspace_size(const AttentionArgs& args, bool varlen, size_t* bytes);

struct DecodeArgs {
  // q: [batch, seqlen_q, heads, head_dim], the newest seqlen_q tokens of each sequence, which the
  // cache already holds: query i of sequence b sees cache positions j <= cache_seqlens[b] -
  // seqlen_q + i (and j >= that bound - window_left when window_left >= 0).
  TensorView q;
  // Contiguous cache: k_cache, v_cache [batch, capacity, heads_kv, head_dim].
  // Paged cache:      k_cache, v_cache [num_pages, page_size, heads_kv, head_dim] and
  //                   block_table int32 [batch, max_pages_per_seq]: position j of sequence b is
  //                   row j % page_size of page block_table[b][j / page_size].
  TensorView k_cache, v_cache;
  TensorView cache_seqlens;  // optional int32 [batch]; absent: every sequence fills the cache
  TensorView block_table;    // optional: present means paged
  TensorView out;            // like q
  TensorView lse;            // optional float32 [batch, heads, seqlen_q]

  float softmax_scale = 0.0f;
  int64_t window_left = -1;
  float softcap = 0.0f;
  int num_splits = 0;  // 0: heuristic; else split each sequence's keys into this many chunks (<= 256)
  Kernel kernel = Kernel::kAuto;
};

constexpr int kMaxSplits = 256;

Status decode(const DecodeArgs& args, const Launch& launch = {});
// Scratch bytes decode() needs (partial outputs and their LSE, one set per split).
Status decode_workspace_size(const DecodeArgs& args, size_t* bytes);

// The kernel that attention()/decode() would run for these arguments, or why none can.
// Validates the arguments first.
Status select_kernel(const AttentionArgs& args, bool varlen, Kernel* kernel);
Status select_kernel(const DecodeArgs& args, Kernel* kernel);

// Build information: whether the CUDA backend was compiled in, whether this library holds
// `kernel` (the CPU kernels and kAuto always; a CUDA kernel when compiled in, see
// SFA_CUDA_KERNELS), and how many CUDA devices exist.
bool built_with_cuda();
bool kernel_built(Kernel kernel);
int cuda_device_count();  // 0 without CUDA or without a device

}  // namespace sfa
