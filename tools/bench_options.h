// sfa-bench: what one invocation asks for (kernels, one shape or a suite, timing, output) and
// the parser of its command line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sfa/sfa.h"

namespace sfa::bench {

enum class Mode { kPrefill, kVarlen, kDecode };

const char* mode_name(Mode mode);

// One problem shape. Prefill/varlen use seqlen_k as the key length; decode uses it as the KV
// cache length (kv_len) and seqlen_q as the number of new tokens per sequence.
struct Shape {
  Mode mode = Mode::kPrefill;
  DType dtype = DType::kFloat16;
  int batch = 1;
  int seqlen_q = 1024;
  int seqlen_k = 1024;
  int heads = 8;
  int heads_kv = 8;
  int head_dim = 64;
  bool causal = false;
  int64_t window_left = -1;
  int64_t window_right = -1;
  float softcap = 0.0f;
  int page_size = 0;     // decode: 0 contiguous cache, else paged with this many rows per page
  int num_splits = 0;    // decode: 0 heuristic
  bool ragged = false;   // decode: different cache lengths per sequence
  bool strided = false;  // prefill: non-contiguous q/k/v/out views
};

// A compact description for the table: "b1 q1024 k1024 h8/8 d64 causal".
std::string describe_shape(const Shape& shape);

struct Options {
  std::vector<std::string> kernels;  // empty: "auto"
  Shape shape;
  std::string suite;  // empty: the single shape above
  std::string reference = "cpu-reference";
  bool verify = true;
  bool verify_after_timing = false;  // measure time and memory first, then verify
  int warmup = -1;                   // -1: the device's default
  int iters = -1;
  double max_seconds = -1;  // stop timing a row once its timed runs took this long (-1: default)
  uint64_t seed = 0;        // 0: fresh seeds
  bool json = false;
  bool report_rss = false;  // add peak resident memory to each row (cpu-memory suite)
  bool list = false;
  bool help = false;
};

// Parses argv; on error returns kInvalidArgument naming the flag and the bad value.
Status parse_options(int argc, char** argv, Options* options);
// The --help text.
std::string usage();

// Parses "1024", "1k" (1024), "16K" (16384); false on garbage, a negative value or overflow.
bool parse_count(const std::string& text, int64_t* value);

}  // namespace sfa::bench
