// decode_fast timing over the PERF_TARGETS.md decode grid (bf16, head_dim 128, one new token):
// batch 1/16/64, heads q/kv 32/8, 32/32, 64/8, kv 1k..128k. For every point it times
//   auto       the library's split heuristic, contiguous cache [batch, kv, heads_kv, head_dim]
//              (flash-attn's KV-cache layout: a head's keys are 256-byte pieces 2 KB apart)
//   auto_hm    the same over a head-major buffer [batch, heads_kv, kv, head_dim] seen through
//              strides (the layout of the torch baselines: a head's keys are contiguous)
//   splits=N   an explicit split count (a sweep, to tune the heuristic)
//   paged16 / paged256   the same cache in shuffled pages of 16 / 256 positions
// with CUDA events around one decode() call, the L2 flushed before each call by a 256 MB write,
// the median of --reps runs. GB/s = bytes of K and V read / time. Every timed variant's output is
// compared with the 1-split contiguous result (max abs difference), and the device-to-device
// copy ceiling is measured in the same process.
//
// usage: decode_fast_timing [--reps N] [--csv FILE] [--quick] [--points LIST] [--splits LIST]
//                           [--interleave LIST] [--page N] [--warm-code]
//   --quick:  a few small points only (a smoke run)
//   --points: these points instead of the grid, "batch/heads/heads_kv/kv,..." (e.g. 1/32/8/1024,16/32/8/1024;
//             points outside the grid too)
//   --splits: the split counts of the sweep, "2,4,8" ("" or "none": no sweep; default: 2..256)
//   --interleave: only these split counts ("0,6,8"; 0 = the heuristic's), timed in turn call by
//             call (an A/B without the order effects of one count timed after another)
//   --page:   with --interleave, the cache in shuffled pages of N positions (default: contiguous)
//   --warm-code: with --interleave, a diagnostic outside the benchmark's rule: between the flush
//             and each timed call, an untimed call with the same batch, heads and split count on a
//             cache of 16 positions (another q, the first 16 x batch rows of the same buffers), so
//             that the timed call finds the kernel's code, not its data, in L2
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "check_cuda.h"
#include "sfa/sfa.h"

namespace {

constexpr int kHeadDim = 128;
constexpr size_t kFlushBytes = 256ull << 20;     // > 5x the 50 MB L2
constexpr size_t kRandomBytes = 64ull << 20;     // random pattern tiled over the caches

struct Point {
  int batch, heads, heads_kv, kv;
  bool operator==(const Point& o) const {
    return batch == o.batch && heads == o.heads && heads_kv == o.heads_kv && kv == o.kv;
  }
};

// "a,b,c" -> integers; "" or "none" -> none.
std::vector<int> parse_ints(const std::string& s) {
  std::vector<int> v;
  if (s == "none") return v;
  size_t i = 0;
  while (i < s.size()) {
    const size_t j = std::min(s.find(',', i), s.size());
    if (j > i) v.push_back(std::atoi(s.substr(i, j - i).c_str()));
    i = j + 1;
  }
  return v;
}

// "b/h/hkv/kv,..." -> points.
std::vector<Point> parse_points(const std::string& s) {
  std::vector<Point> v;
  size_t i = 0;
  while (i < s.size()) {
    const size_t j = std::min(s.find(',', i), s.size());
    Point pt{};
    if (std::sscanf(s.substr(i, j - i).c_str(), "%d/%d/%d/%d", &pt.batch, &pt.heads, &pt.heads_kv, &pt.kv) == 4) {
      v.push_back(pt);
    }
    i = j + 1;
  }
  return v;
}

// PERF_TARGETS.md decode grid (the points it lists).
std::vector<Point> grid(bool quick) {
  if (quick) return {{1, 32, 8, 1024}, {16, 32, 8, 8192}};
  std::vector<Point> v;
  const struct { int batch, heads, heads_kv, max_kv; } rows[] = {
      {1, 32, 8, 131072}, {16, 32, 8, 131072}, {64, 32, 8, 32768}, {1, 32, 32, 131072},
      {16, 32, 32, 32768}, {1, 64, 8, 131072}, {16, 64, 8, 32768}};
  for (const auto& r : rows) {
    for (int kv : {1024, 8192, 32768, 131072}) {
      if (kv <= r.max_kv) v.push_back({r.batch, r.heads, r.heads_kv, kv});
    }
  }
  return v;
}

struct Device {
  void* k = nullptr;
  void* v = nullptr;
  size_t cache_bytes = 0;
  void* flush = nullptr;
  cudaEvent_t start, stop;
};

// A 64 MB pattern of random bf16 N(0,1) values, made once.
const std::vector<uint16_t>& random_pattern() {
  static const std::vector<uint16_t> pattern = [] {
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<uint16_t> host(kRandomBytes / 2);
    for (auto& x : host) {
      float f = normal(rng);
      uint32_t bits;
      std::memcpy(&bits, &f, 4);
      x = static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);  // round to nearest even
    }
    return host;
  }();
  return pattern;
}

// Fills `bytes` of device memory with random bf16 values: the pattern from `offset` (so K, V and
// q differ), tiled by doubling the filled prefix.
void fill_random(void* dst, size_t bytes, size_t offset) {
  const std::vector<uint16_t>& pattern = random_pattern();
  offset = (offset * 4096) % (kRandomBytes / 2);
  const size_t first = std::min(bytes, kRandomBytes - offset * 2);
  CHECK_CUDA(cudaMemcpy(dst, pattern.data() + offset, first, cudaMemcpyHostToDevice));
  for (size_t done = first; done < bytes;) {
    const size_t n = std::min(done, bytes - done);
    CHECK_CUDA(cudaMemcpy(static_cast<char*>(dst) + done, dst, n, cudaMemcpyDeviceToDevice));
    done += n;
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Problem {
  sfa::DecodeArgs args;
  void* q = nullptr;
  void* out = nullptr;
  void* lse = nullptr;
  void* lengths = nullptr;
  void* table = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  Problem* code_twin = nullptr;  // --warm-code: called (untimed) between the flush and the timed call
};

constexpr int kHeadMajor = -1;  // make_problem's page_size for the head-major contiguous view

// q, out, lse and lengths for a point; the cache views over dev.k / dev.v (contiguous, head-major
// contiguous, or paged with a shuffled block table when page_size > 0).
void make_problem(const Point& pt, int page_size, const Device& dev, Problem* pr) {
  const int64_t q_shape[] = {pt.batch, 1, pt.heads, kHeadDim};
  const size_t q_elems = static_cast<size_t>(pt.batch) * pt.heads * kHeadDim;
  CHECK_CUDA(cudaMalloc(&pr->q, q_elems * 2));
  fill_random(pr->q, q_elems * 2, 7);
  CHECK_CUDA(cudaMalloc(&pr->out, q_elems * 2));
  CHECK_CUDA(cudaMalloc(&pr->lse, static_cast<size_t>(pt.batch) * pt.heads * 4));
  std::vector<int32_t> lengths(pt.batch, pt.kv);
  CHECK_CUDA(cudaMalloc(&pr->lengths, pt.batch * 4));
  CHECK_CUDA(cudaMemcpy(pr->lengths, lengths.data(), pt.batch * 4, cudaMemcpyHostToDevice));
  sfa::DecodeArgs& a = pr->args;
  const sfa::Device cuda = sfa::Device::cuda(0);
  a.q = sfa::make_tensor(pr->q, sfa::DType::kBFloat16, cuda, 4, q_shape);
  a.out = sfa::make_tensor(pr->out, sfa::DType::kBFloat16, cuda, 4, q_shape);
  const int64_t lse_shape[] = {pt.batch, pt.heads, 1};
  a.lse = sfa::make_tensor(pr->lse, sfa::DType::kFloat32, cuda, 3, lse_shape);
  const int64_t len_shape[] = {pt.batch};
  a.cache_seqlens = sfa::make_tensor(pr->lengths, sfa::DType::kInt32, cuda, 1, len_shape);
  if (page_size == 0) {
    const int64_t shape[] = {pt.batch, pt.kv, pt.heads_kv, kHeadDim};
    a.k_cache = sfa::make_tensor(dev.k, sfa::DType::kBFloat16, cuda, 4, shape);
    a.v_cache = sfa::make_tensor(dev.v, sfa::DType::kBFloat16, cuda, 4, shape);
  } else if (page_size == kHeadMajor) {
    const int64_t shape[] = {pt.batch, pt.kv, pt.heads_kv, kHeadDim};
    const int64_t stride[] = {static_cast<int64_t>(pt.heads_kv) * pt.kv * kHeadDim, kHeadDim,
                              static_cast<int64_t>(pt.kv) * kHeadDim, 1};
    a.k_cache = sfa::make_tensor(dev.k, sfa::DType::kBFloat16, cuda, 4, shape, stride);
    a.v_cache = sfa::make_tensor(dev.v, sfa::DType::kBFloat16, cuda, 4, shape, stride);
  } else {
    const int64_t pages_per_seq = pt.kv / page_size;
    const int64_t num_pages = pt.batch * pages_per_seq;
    const int64_t shape[] = {num_pages, page_size, pt.heads_kv, kHeadDim};
    a.k_cache = sfa::make_tensor(dev.k, sfa::DType::kBFloat16, cuda, 4, shape);
    a.v_cache = sfa::make_tensor(dev.v, sfa::DType::kBFloat16, cuda, 4, shape);
    std::vector<int32_t> table(static_cast<size_t>(num_pages));
    for (int64_t i = 0; i < num_pages; ++i) table[i] = static_cast<int32_t>(i);
    std::shuffle(table.begin(), table.end(), std::mt19937(11));
    CHECK_CUDA(cudaMalloc(&pr->table, table.size() * 4));
    CHECK_CUDA(cudaMemcpy(pr->table, table.data(), table.size() * 4, cudaMemcpyHostToDevice));
    const int64_t table_shape[] = {pt.batch, pages_per_seq};
    a.block_table = sfa::make_tensor(pr->table, sfa::DType::kInt32, cuda, 2, table_shape);
  }
  a.kernel = sfa::Kernel::kDecodeFast;
}

void free_problem(Problem* pr) {
  for (void* p : {pr->q, pr->out, pr->lse, pr->lengths, pr->table, pr->workspace}) {
    if (p) CHECK_CUDA(cudaFree(p));
  }
  *pr = Problem{};
}

// Sizes the workspace for the current args (reallocating when it grows).
bool bind_workspace(Problem* pr, sfa::Launch* launch) {
  size_t bytes = 0;
  sfa::Status st = sfa::decode_workspace_size(pr->args, &bytes);
  if (!st) {
    std::fprintf(stderr, "decode_workspace_size: %s\n", st.message().c_str());
    return false;
  }
  if (bytes > pr->workspace_bytes) {
    if (pr->workspace) CHECK_CUDA(cudaFree(pr->workspace));
    CHECK_CUDA(cudaMalloc(&pr->workspace, bytes));
    pr->workspace_bytes = bytes;
  }
  launch->workspace = bytes ? pr->workspace : nullptr;
  launch->workspace_bytes = bytes ? pr->workspace_bytes : 0;
  return true;
}

// Three untimed decode() calls; false (with the message) if one fails.
bool warm_up(const Problem& pr, const sfa::Launch& launch) {
  for (int i = 0; i < 3; ++i) {
    sfa::Status st = sfa::decode(pr.args, launch);
    if (!st) {
      std::fprintf(stderr, "decode: %s\n", st.message().c_str());
      return false;
    }
  }
  return true;
}

// Microseconds of one decode() call after the L2 flush (`round` picks the flush's byte).
double time_one(const Problem& pr, const sfa::Launch& launch, const Device& dev, int round) {
  CHECK_CUDA(cudaMemsetAsync(dev.flush, round & 0xff, kFlushBytes));
  if (pr.code_twin) {
    pr.code_twin->args.num_splits = pr.args.num_splits;
    sfa::decode(pr.code_twin->args, launch);
  }
  CHECK_CUDA(cudaEventRecord(dev.start));
  sfa::decode(pr.args, launch);
  CHECK_CUDA(cudaEventRecord(dev.stop));
  CHECK_CUDA(cudaEventSynchronize(dev.stop));
  float ms = 0;
  CHECK_CUDA(cudaEventElapsedTime(&ms, dev.start, dev.stop));
  return ms * 1e3;
}

// Median microseconds of one decode() call, L2 flushed before each.
double time_decode(Problem* pr, const Device& dev, int reps) {
  sfa::Launch launch;
  if (!bind_workspace(pr, &launch) || !warm_up(*pr, launch)) return -1;
  std::vector<double> us;
  for (int r = 0; r < reps; ++r) us.push_back(time_one(*pr, launch, dev, r));
  CHECK_CUDA(cudaGetLastError());
  return median(us);
}

// Median microseconds of each split count in `splits` (0: the heuristic's), timed in turn: each
// round times every count once, starting one further each round, so that no count always runs
// after the same one (the timing of a call depends on the call before it by up to ~0.7 us at
// batch 1 / kv 1k).
std::vector<double> time_interleaved(Problem* pr, const Device& dev, const std::vector<int>& splits, int reps) {
  const size_t n = splits.size();
  std::vector<sfa::Launch> launches(n);
  for (int pass = 0; pass < 2; ++pass) {  // the first pass sizes the workspace for the largest count
    for (size_t i = 0; i < n; ++i) {
      pr->args.num_splits = splits[i];
      if (!bind_workspace(pr, &launches[i])) return {};
    }
  }
  std::vector<std::vector<double>> us(n);
  for (size_t i = 0; i < n; ++i) {
    pr->args.num_splits = splits[i];
    if (!warm_up(*pr, launches[i])) return {};
  }
  for (int r = 0; r < reps; ++r) {
    for (size_t j = 0; j < n; ++j) {
      const size_t i = (r + j) % n;
      pr->args.num_splits = splits[i];
      us[i].push_back(time_one(*pr, launches[i], dev, r));
    }
  }
  CHECK_CUDA(cudaGetLastError());
  std::vector<double> med(n);
  for (size_t i = 0; i < n; ++i) med[i] = median(us[i]);
  return med;
}

// Median microseconds of a device-to-device copy of `bytes` from K's buffer to V's (V is
// overwritten), the L2 flushed before each copy when `flush`.
double time_copy(const Device& dev, size_t bytes, int reps, bool flush) {
  std::vector<double> us;
  for (int r = 0; r < reps; ++r) {
    if (flush) CHECK_CUDA(cudaMemsetAsync(dev.flush, r & 0xff, kFlushBytes));
    CHECK_CUDA(cudaEventRecord(dev.start));
    CHECK_CUDA(cudaMemcpyAsync(dev.v, dev.k, bytes, cudaMemcpyDeviceToDevice));
    CHECK_CUDA(cudaEventRecord(dev.stop));
    CHECK_CUDA(cudaEventSynchronize(dev.stop));
    float ms = 0;
    CHECK_CUDA(cudaEventElapsedTime(&ms, dev.start, dev.stop));
    us.push_back(ms * 1e3);
  }
  return median(us);
}

std::vector<uint16_t> download_out(const Problem& pr, const Point& pt) {
  std::vector<uint16_t> h(static_cast<size_t>(pt.batch) * pt.heads * kHeadDim);
  CHECK_CUDA(cudaDeviceSynchronize());
  CHECK_CUDA(cudaMemcpy(h.data(), pr.out, h.size() * 2, cudaMemcpyDeviceToHost));
  return h;
}

float bf16_to_float(uint16_t x) {
  const uint32_t bits = static_cast<uint32_t>(x) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

double max_abs_diff(const std::vector<uint16_t>& a, const std::vector<uint16_t>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(bf16_to_float(a[i]) - bf16_to_float(b[i]));
    m = std::isnan(d) ? INFINITY : std::max(m, d);
  }
  return m;
}

int chosen_splits(const Problem& pr) {
  // The heuristic's choice: the workspace size encodes num_splits (partial rows * (d + 1) floats).
  size_t bytes = 0;
  sfa::DecodeArgs a = pr.args;
  if (!sfa::decode_workspace_size(a, &bytes) || bytes == 0) return 1;
  for (int n = 2; n <= sfa::kMaxSplits; ++n) {
    a.num_splits = n;
    size_t b = 0;
    if (sfa::decode_workspace_size(a, &b) && b == bytes) return n;
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 30;
  bool quick = false;
  const char* csv_path = "decode_fast_timing.csv";
  std::vector<Point> only;
  std::vector<int> sweep = {2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256};
  std::vector<int> interleave;
  int interleave_page = 0;
  bool warm_code = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--csv") && i + 1 < argc) csv_path = argv[++i];
    else if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--points") && i + 1 < argc) only = parse_points(argv[++i]);
    else if (!std::strcmp(argv[i], "--splits") && i + 1 < argc) sweep = parse_ints(argv[++i]);
    else if (!std::strcmp(argv[i], "--interleave") && i + 1 < argc) interleave = parse_ints(argv[++i]);
    else if (!std::strcmp(argv[i], "--page") && i + 1 < argc) interleave_page = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--warm-code")) warm_code = true;
  }
  const std::vector<Point> points = only.empty() ? grid(quick) : only;
  Device dev;
  for (const Point& pt : points) {
    dev.cache_bytes = std::max(dev.cache_bytes, static_cast<size_t>(pt.batch) * pt.kv * pt.heads_kv * kHeadDim * 2);
  }
  CHECK_CUDA(cudaMalloc(&dev.k, dev.cache_bytes));
  CHECK_CUDA(cudaMalloc(&dev.v, dev.cache_bytes));
  CHECK_CUDA(cudaMalloc(&dev.flush, kFlushBytes));
  fill_random(dev.k, dev.cache_bytes, 1);
  fill_random(dev.v, dev.cache_bytes, 2);
  CHECK_CUDA(cudaEventCreate(&dev.start));
  CHECK_CUDA(cudaEventCreate(&dev.stop));

  std::FILE* csv = std::fopen(csv_path, "w");
  if (!csv) {
    std::fprintf(stderr, "cannot write %s\n", csv_path);
    return 1;
  }
  std::fprintf(csv, "batch,heads,heads_kv,kv,mode,splits,us,gbps,max_abs_diff\n");

  // Copy ceiling: device-to-device copy of 2 GB (bytes read + written).
  {
    const size_t bytes = std::min<size_t>(dev.cache_bytes, 2ull << 30);
    const double t = time_copy(dev, bytes, 5, /*flush=*/false);
    std::printf("copy ceiling: %.0f GB/s (%zu MB copied)\n", 2.0 * bytes / t / 1e3, bytes >> 20);
    std::fprintf(csv, "0,0,0,0,copy,0,%.3f,%.1f,0\n", t, 2.0 * bytes / t / 1e3);
    fill_random(dev.v, dev.cache_bytes, 2);
  }

  if (!interleave.empty()) {
    // Only the listed split counts, timed in turn (time_interleaved); rows "interleaved" (0: the
    // heuristic's count, rows "interleaved_auto").
    for (const Point& pt : points) {
      const double bytes = 2.0 * pt.batch * pt.kv * pt.heads_kv * kHeadDim * 2;
      Problem pr, twin;
      make_problem(pt, interleave_page, dev, &pr);
      if (warm_code) {
        make_problem(Point{pt.batch, pt.heads, pt.heads_kv, 16}, interleave_page, dev, &twin);
        pr.code_twin = &twin;
      }
      pr.args.num_splits = 0;
      const int auto_splits = chosen_splits(pr);
      const std::vector<double> us = time_interleaved(&pr, dev, interleave, reps);
      std::printf("%6d %3d/%-2d %7d |", pt.batch, pt.heads, pt.heads_kv, pt.kv);
      for (size_t i = 0; i < us.size(); ++i) {
        const int n = interleave[i] == 0 ? auto_splits : interleave[i];
        std::printf(" %s%d: %.2f us", interleave[i] == 0 ? "auto " : "", n, us[i]);
        std::fprintf(csv, "%d,%d,%d,%d,%s,%d,%.3f,%.1f,0\n", pt.batch, pt.heads, pt.heads_kv, pt.kv,
                     (std::string(interleave[i] == 0 ? "interleaved_auto" : "interleaved") +
                      (interleave_page > 0 ? "_paged" + std::to_string(interleave_page) : ""))
                         .c_str(),
                     n, us[i], bytes / us[i] / 1e3);
      }
      std::printf("\n");
      std::fflush(stdout);
      free_problem(&pr);
      if (warm_code) free_problem(&twin);
    }
    std::fclose(csv);
    return 0;
  }

  std::printf("%6s %6s %7s %7s | %10s %6s %8s %8s | %9s %9s %9s | %s\n", "batch", "heads", "kv", "KV MB",
              "auto us", "split", "GB/s", "best GB/s", "paged16", "paged256", "head-maj", "max diff");
  for (const Point& pt : points) {
    const double bytes = 2.0 * pt.batch * pt.kv * pt.heads_kv * kHeadDim * 2;
    auto gbps = [&](double us) { return us > 0 ? bytes / us / 1e3 : 0.0; };
    Problem pr;
    make_problem(pt, 0, dev, &pr);
    // Reference output: one split.
    pr.args.num_splits = 1;
    const double t1 = time_decode(&pr, dev, reps);
    const std::vector<uint16_t> ref = download_out(pr, pt);
    std::fprintf(csv, "%d,%d,%d,%d,splits,1,%.3f,%.1f,0\n", pt.batch, pt.heads, pt.heads_kv, pt.kv, t1, gbps(t1));
    double best_us = t1;
    int best_splits = 1;
    double worst_diff = 0;
    for (int n : sweep) {
      if (n * 16 > pt.kv) break;
      const int64_t blocks = static_cast<int64_t>(pt.batch) * pt.heads_kv * ((pt.heads / pt.heads_kv + 15) / 16) * n;
      if (blocks > 8 * 132) break;  // far past a full GPU: splitting cannot help
      pr.args.num_splits = n;
      const double t = time_decode(&pr, dev, reps);
      const double diff = max_abs_diff(download_out(pr, pt), ref);
      worst_diff = std::max(worst_diff, diff);
      std::fprintf(csv, "%d,%d,%d,%d,splits,%d,%.3f,%.1f,%.3g\n", pt.batch, pt.heads, pt.heads_kv, pt.kv, n, t,
                   gbps(t), diff);
      if (t > 0 && t < best_us) best_us = t, best_splits = n;
    }
    pr.args.num_splits = 0;
    const int auto_splits = chosen_splits(pr);
    const double ta = time_decode(&pr, dev, reps);
    const double diff_auto = max_abs_diff(download_out(pr, pt), ref);
    worst_diff = std::max(worst_diff, diff_auto);
    std::fprintf(csv, "%d,%d,%d,%d,auto,%d,%.3f,%.1f,%.3g\n", pt.batch, pt.heads, pt.heads_kv, pt.kv, auto_splits, ta,
                 gbps(ta), diff_auto);
    std::fprintf(csv, "%d,%d,%d,%d,best,%d,%.3f,%.1f,0\n", pt.batch, pt.heads, pt.heads_kv, pt.kv, best_splits,
                 best_us, gbps(best_us));
    free_problem(&pr);
    double tp[3] = {0, 0, 0};
    const int page_sizes[3] = {16, 256, kHeadMajor};
    for (int i = 0; i < 3; ++i) {
      // Paged and head-major data differ from the contiguous view: each check is against its own
      // 1-split run.
      make_problem(pt, page_sizes[i], dev, &pr);
      pr.args.num_splits = 1;
      sfa::Launch launch;
      if (!bind_workspace(&pr, &launch) || !sfa::decode(pr.args, launch)) std::fprintf(stderr, "paged 1-split failed\n");
      const std::vector<uint16_t> paged_ref = download_out(pr, pt);
      pr.args.num_splits = 0;
      tp[i] = time_decode(&pr, dev, reps);
      const double diff = max_abs_diff(download_out(pr, pt), paged_ref);
      worst_diff = std::max(worst_diff, diff);
      const std::string mode = page_sizes[i] == kHeadMajor ? "auto_hm" : "paged" + std::to_string(page_sizes[i]);
      std::fprintf(csv, "%d,%d,%d,%d,%s,%d,%.3f,%.1f,%.3g\n", pt.batch, pt.heads, pt.heads_kv, pt.kv,
                   mode.c_str(), auto_splits, tp[i], gbps(tp[i]), diff);
      free_problem(&pr);
    }
    std::printf("%6d %3d/%-2d %7d %7.0f | %10.2f %6d %8.0f %4.0f@%-3d | %9.0f %9.0f %9.0f | %.3g\n", pt.batch,
                pt.heads, pt.heads_kv, pt.kv, bytes / 1e6, ta, auto_splits, gbps(ta), gbps(best_us), best_splits,
                gbps(tp[0]), gbps(tp[1]), gbps(tp[2]), worst_diff);
    std::fflush(stdout);
  }
  // The copy ceiling at the size of each large point: a device-to-device copy that reads half of
  // K+V's bytes and writes as many (the same bytes moved), timed like decode() with the L2
  // flushed first, so that its fixed costs (launch, ramp, the flush's write-back) are those of
  // one decode step of that size. Last, because it overwrites V.
  for (const Point& pt : points) {
    const size_t bytes = 2ull * pt.batch * pt.kv * pt.heads_kv * kHeadDim * 2;
    if (bytes < (512ull << 20) || bytes / 2 > dev.cache_bytes) continue;
    const double t = time_copy(dev, bytes / 2, reps, /*flush=*/true);
    std::printf("same-size copy %6d %3d/%-2d %7d: %.0f GB/s (%.1f us)\n", pt.batch, pt.heads, pt.heads_kv, pt.kv,
                bytes / t / 1e3, t);
    std::fprintf(csv, "%d,%d,%d,%d,copy_size,0,%.3f,%.1f,0\n", pt.batch, pt.heads, pt.heads_kv, pt.kv, t,
                 bytes / t / 1e3);
  }
  std::fclose(csv);
  return 0;
}
