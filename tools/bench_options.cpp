// sfa-bench command-line parsing.
#include "bench_options.h"

#include <cerrno>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>

namespace sfa::bench {
namespace {

Status bad(const std::string& flag, const std::string& expected, const std::string& given) {
  return Status(StatusCode::kInvalidArgument, flag + ": expected " + expected + ", got '" + given + "'");
}

Status parse_int(const std::string& flag, const std::string& text, int64_t lo, int64_t hi, int64_t* value) {
  int64_t v = 0;
  if (!parse_count(text, &v) || v < lo || v > hi) {
    return bad(flag, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", text);
  }
  *value = v;
  return Status::ok();
}

Status parse_int(const std::string& flag, const std::string& text, int lo, int* value) {
  int64_t v = 0;
  Status st = parse_int(flag, text, lo, std::numeric_limits<int>::max(), &v);
  if (st) *value = static_cast<int>(v);
  return st;
}

Status parse_float(const std::string& flag, const std::string& text, double lo, double* value) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno != 0 || !(v >= lo)) {
    return bad(flag, "a number >= " + std::to_string(lo), text);
  }
  *value = v;
  return Status::ok();
}

Status parse_dtype(const std::string& text, DType* dtype) {
  static const std::map<std::string, DType> kNames = {
      {"float32", DType::kFloat32}, {"fp32", DType::kFloat32},      {"f32", DType::kFloat32},
      {"float16", DType::kFloat16}, {"fp16", DType::kFloat16},      {"f16", DType::kFloat16},
      {"half", DType::kFloat16},    {"bfloat16", DType::kBFloat16}, {"bf16", DType::kBFloat16}};
  auto it = kNames.find(text);
  if (it == kNames.end()) return bad("--dtype", "float32, float16 or bfloat16 (fp32, fp16, bf16)", text);
  *dtype = it->second;
  return Status::ok();
}

Status parse_mode(const std::string& text, Mode* mode) {
  static const std::map<std::string, Mode> kNames = {
      {"prefill", Mode::kPrefill}, {"varlen", Mode::kVarlen}, {"decode", Mode::kDecode}};
  auto it = kNames.find(text);
  if (it == kNames.end()) return bad("--mode", "prefill, varlen or decode", text);
  *mode = it->second;
  return Status::ok();
}

Status parse_seed(const std::string& text, uint64_t* seed) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || text[0] == '-' || *end != '\0' || errno != 0) {
    return bad("--seed", "an unsigned 64-bit integer", text);
  }
  *seed = static_cast<uint64_t>(v);
  return Status::ok();
}

// "--window L,R" or "--window L" (left only).
Status parse_window(const std::string& text, Shape* shape) {
  const size_t comma = text.find(',');
  const std::string left = text.substr(0, comma);
  Status st = parse_int("--window", left, -1, std::numeric_limits<int32_t>::max(), &shape->window_left);
  if (!st || comma == std::string::npos) return st;
  return parse_int("--window", text.substr(comma + 1), -1, std::numeric_limits<int32_t>::max(),
                   &shape->window_right);
}

void split_names(const std::string& text, std::vector<std::string>* names) {
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const std::string name =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!name.empty()) names->push_back(name);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
}

// Flags that only one mode understands.
Status check_mode_flags(const Shape& s) {
  const std::string mode = mode_name(s.mode);
  auto not_in = [&](const char* flag) {
    return Status(StatusCode::kInvalidArgument, std::string(flag) + ": not used in --mode " + mode);
  };
  if (s.mode == Mode::kDecode) {
    if (s.causal) return not_in("--causal (decode queries are the newest tokens of their sequence)");
    if (s.window_right >= 0) return not_in("--window-right");
    if (s.strided) return not_in("--strided");
  } else {
    if (s.page_size > 0) return not_in("--page-size");
    if (s.num_splits > 0) return not_in("--num-splits");
    if (s.ragged) return not_in("--ragged (varlen draws ragged lengths itself)");
  }
  return Status::ok();
}

}  // namespace

const char* mode_name(Mode mode) {
  switch (mode) {
    case Mode::kPrefill: return "prefill";
    case Mode::kVarlen: return "varlen";
    case Mode::kDecode: return "decode";
  }
  return "unknown";
}

std::string describe_shape(const Shape& s) {
  std::string text = "b" + std::to_string(s.batch) + " q" + std::to_string(s.seqlen_q) +
                     (s.mode == Mode::kDecode ? " kv" : " k") + std::to_string(s.seqlen_k) + " h" +
                     std::to_string(s.heads) + "/" + std::to_string(s.heads_kv) + " d" +
                     std::to_string(s.head_dim);
  if (s.causal) text += " causal";
  if (s.window_left >= 0 || s.window_right >= 0) {
    text += " win" + std::to_string(s.window_left) + "," + std::to_string(s.window_right);
  }
  if (s.softcap > 0) text += " cap" + std::to_string(static_cast<int>(s.softcap));
  if (s.page_size > 0) text += " page" + std::to_string(s.page_size);
  if (s.num_splits > 0) text += " split" + std::to_string(s.num_splits);
  if (s.ragged) text += " ragged";
  if (s.strided) text += " strided";
  return text;
}

bool parse_count(const std::string& text, int64_t* value) {
  if (text.empty()) return false;
  std::string digits = text;
  int64_t multiplier = 1;
  const char last = digits.back();
  if (last == 'k' || last == 'K') {
    multiplier = 1024;
    digits.pop_back();
  }
  if (digits.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(digits.c_str(), &end, 10);
  if (*end != '\0' || errno != 0) return false;
  if (v < 0 && multiplier != 1) return false;
  if (v > std::numeric_limits<int64_t>::max() / multiplier) return false;
  *value = static_cast<int64_t>(v) * multiplier;
  return true;
}

Status parse_options(int argc, char** argv, Options* o) {
  Shape& s = o->shape;
  bool seqlen_q_given = false;
  constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
  // Flags that take a value; each handler parses it.
  const std::map<std::string, std::function<Status(const std::string&)>> with_value = {
      {"--kernel",
       [&](const std::string& v) {
         split_names(v, &o->kernels);
         return Status::ok();
       }},
      {"--mode", [&](const std::string& v) { return parse_mode(v, &s.mode); }},
      {"--dtype", [&](const std::string& v) { return parse_dtype(v, &s.dtype); }},
      {"--batch", [&](const std::string& v) { return parse_int("--batch", v, 0, &s.batch); }},
      {"--seqlen",
       [&](const std::string& v) {
         seqlen_q_given = true;
         Status st = parse_int("--seqlen", v, 0, &s.seqlen_q);
         s.seqlen_k = s.seqlen_q;
         return st;
       }},
      {"--seqlen-q",
       [&](const std::string& v) {
         seqlen_q_given = true;
         return parse_int("--seqlen-q", v, 0, &s.seqlen_q);
       }},
      {"--seqlen-k", [&](const std::string& v) { return parse_int("--seqlen-k", v, 0, &s.seqlen_k); }},
      {"--kv-len", [&](const std::string& v) { return parse_int("--kv-len", v, 0, &s.seqlen_k); }},
      {"--heads",
       [&](const std::string& v) {
         Status st = parse_int("--heads", v, 1, &s.heads);
         s.heads_kv = s.heads;
         return st;
       }},
      {"--heads-kv", [&](const std::string& v) { return parse_int("--heads-kv", v, 1, &s.heads_kv); }},
      {"--head-dim", [&](const std::string& v) { return parse_int("--head-dim", v, 1, &s.head_dim); }},
      {"--window", [&](const std::string& v) { return parse_window(v, &s); }},
      {"--window-left",
       [&](const std::string& v) { return parse_int("--window-left", v, -1, kInt32Max, &s.window_left); }},
      {"--window-right",
       [&](const std::string& v) { return parse_int("--window-right", v, -1, kInt32Max, &s.window_right); }},
      {"--softcap",
       [&](const std::string& v) {
         double cap = 0;
         Status st = parse_float("--softcap", v, 0.0, &cap);
         s.softcap = static_cast<float>(cap);
         return st;
       }},
      {"--page-size", [&](const std::string& v) { return parse_int("--page-size", v, 0, &s.page_size); }},
      {"--num-splits", [&](const std::string& v) { return parse_int("--num-splits", v, 0, &s.num_splits); }},
      {"--reference",
       [&](const std::string& v) {
         o->reference = v;
         return Status::ok();
       }},
      {"--warmup", [&](const std::string& v) { return parse_int("--warmup", v, 0, &o->warmup); }},
      {"--iters", [&](const std::string& v) { return parse_int("--iters", v, 1, &o->iters); }},
      {"--max-seconds",
       [&](const std::string& v) { return parse_float("--max-seconds", v, 0.0, &o->max_seconds); }},
      {"--seed", [&](const std::string& v) { return parse_seed(v, &o->seed); }},
      {"--suite",
       [&](const std::string& v) {
         o->suite = v;
         return Status::ok();
       }},
  };
  const std::map<std::string, bool*> switches = {
      {"--causal", &s.causal},
      {"--ragged", &s.ragged},
      {"--strided", &s.strided},
      {"--json", &o->json},
      {"--list", &o->list},
      {"--help", &o->help},
      {"--report-rss", &o->report_rss},
      {"--verify-after-timing", &o->verify_after_timing},
  };
  const std::map<std::string, std::string> short_names = {
      {"-k", "--kernel"}, {"-b", "--batch"}, {"-s", "--seqlen"}, {"-d", "--head-dim"}, {"-h", "--help"}};

  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    std::string value;
    bool has_value = false;
    const size_t eq = flag.find('=');
    if (flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      has_value = true;
    }
    if (auto it = short_names.find(flag); it != short_names.end()) flag = it->second;
    if (flag == "--no-verify") {
      o->verify = false;
      continue;
    }
    if (auto it = switches.find(flag); it != switches.end()) {
      if (has_value) return bad(flag, "no value", value);
      *it->second = true;
      continue;
    }
    auto it = with_value.find(flag);
    if (it == with_value.end()) return bad("arguments", "a known flag (see --help)", argv[i]);
    if (!has_value) {
      if (i + 1 >= argc) return bad(flag, "a value", "");
      value = argv[++i];
    }
    Status st = it->second(value);
    if (!st) return st;
  }
  if (s.mode == Mode::kDecode && !seqlen_q_given) s.seqlen_q = 1;
  Status st = check_mode_flags(s);
  if (!st) return st;
  for (const std::string& name : o->kernels) {
    Kernel k;
    if (!(st = kernel_from_name(name.c_str(), &k))) {
      return Status(StatusCode::kInvalidArgument, "--kernel: " + st.message());
    }
  }
  if (o->verify) {
    Kernel k;
    if (!(st = kernel_from_name(o->reference.c_str(), &k))) {
      return Status(StatusCode::kInvalidArgument, "--reference: " + st.message());
    }
  }
  return Status::ok();
}

std::string usage() {
  return R"(sfa-bench: verify and time sfa's attention kernels.

usage: sfa-bench [--kernel NAME[,NAME...]] [shape options] [timing options] [--json]
       sfa-bench --suite NAME [--json]
       sfa-bench --list

kernel
  -k, --kernel NAMES     kernels to run, comma-separated or repeated (default: auto)
                         cpu-reference, cpu-flash, cpu-decode, standard, fa1, fa2, decode,
                         fa2_mma, decode_fast, auto
shape
  --mode MODE            prefill (default), varlen (packed, ragged lengths) or decode
  -b, --batch N          sequences (default 1)
  -s, --seqlen N         query and key length (default 1024; 4k = 4096)
  --seqlen-q N           query length (decode: new tokens per sequence, default 1)
  --seqlen-k N, --kv-len N
                         key length (decode: KV cache length)
  --heads N              query heads, also sets --heads-kv (default 8)
  --heads-kv N           key/value heads (GQA/MQA when fewer than --heads)
  -d, --head-dim N       head dimension (default 64)
  --dtype T              float32|float16|bfloat16 (fp32, fp16, bf16; default float16)
  --causal               causal mask (bottom-right aligned)
  --window L[,R]         sliding window (-1 unbounded); also --window-left, --window-right
  --softcap X            tanh softcap of the scores (0 off)
  --page-size N          decode: paged KV cache with N rows per page (0 contiguous)
  --num-splits N         decode: KV splits (0 heuristic)
  --ragged               decode: different cache lengths per sequence
  --strided              prefill: non-contiguous q/k/v/out views
verification
  --reference NAME       kernel to compare against (default cpu-reference; e.g. cpu-flash for
                         big shapes, standard on the GPU)
  --no-verify            time only
  --verify-after-timing  time first, then verify (keeps the reference out of memory figures)
timing
  --warmup N             untimed runs first (default: CPU 1, CUDA 10)
  --iters N              timed runs; the median is reported (default: CPU 5, CUDA 100)
  --max-seconds S        stop timing a row once its timed runs took S seconds (default 10)
  --seed N               input seed (default: a fresh one per shape)
output
  --json                 one JSON object per row instead of the table
  --report-rss           add the process's peak resident memory to each row
suites
  --suite default        GPU kernels beside standard attention when a GPU is present, else the
                         CPU backend at modest shapes (what `make demo` runs)
  --suite cpu            the CPU backend suite, even with a GPU present
  --suite cpu-memory     cpu-flash vs cpu-reference at seqlen 1k, 4k, 16k: time and peak memory,
                         one fresh process per measurement
  --list                 list kernels and suites

exit status: 0 when every row ran and matched its reference, 1 otherwise, 2 on bad arguments.
)";
}

}  // namespace sfa::bench
