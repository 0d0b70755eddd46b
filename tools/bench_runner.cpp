// sfa-bench: verifying and timing the kernels of one group through the shared test harness.
#include "bench_runner.h"

#include <sys/resource.h>

#include <cstdio>
#include <cstring>

#include "common/testing.h"

namespace sfa::bench {
namespace {

bool is_cpu_kernel(Kernel k) {
  return k == Kernel::kCpuReference || k == Kernel::kCpuFlash || k == Kernel::kCpuDecode;
}

Outcome outcome_of(const Status& st) {
  return st.code() == StatusCode::kUnsupported ? Outcome::kUnsupported : Outcome::kError;
}

testing::AttentionCase attention_case(const Shape& s) {
  testing::AttentionCase c;
  c.dtype = s.dtype;
  c.batch = s.batch;
  c.seqlen_q = s.seqlen_q;
  c.seqlen_k = s.seqlen_k;
  c.heads = s.heads;
  c.heads_kv = s.heads_kv;
  c.head_dim = s.head_dim;
  c.causal = s.causal;
  c.window_left = s.window_left;
  c.window_right = s.window_right;
  c.softcap = s.softcap;
  c.varlen = s.mode == Mode::kVarlen;
  c.strided = s.strided;
  return c;
}

testing::DecodeCase decode_case(const Shape& s) {
  testing::DecodeCase c;
  c.dtype = s.dtype;
  c.batch = s.batch;
  c.seqlen_q = s.seqlen_q;
  c.heads = s.heads;
  c.heads_kv = s.heads_kv;
  c.head_dim = s.head_dim;
  c.kv_len = s.seqlen_k;
  c.ragged = s.ragged;
  c.page_size = s.page_size;
  c.num_splits = s.num_splits;
  c.window_left = s.window_left;
  c.softcap = s.softcap;
  return c;
}

// Writes NaN over a CPU output view, so that its pages are resident before the baseline reading
// of a memory measurement: the peak after the kernel then shows only what the kernel allocates.
void touch_output(const TensorView& t) {
  if (!t.present() || t.device.type != DeviceType::kCPU || t.numel() == 0) return;
  int64_t last = 0;
  for (int i = 0; i < t.rank; ++i) last += (t.shape[i] - 1) * t.stride[i];
  std::memset(t.data, 0xFF, static_cast<size_t>(last + 1) * dtype_size(t.dtype));
}

std::string format_double(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}

// Copies a verification result into the row; a mismatch makes the row FAIL with the reason.
void record_verification(const testing::CaseResult& r, Row* row) {
  if (!r.status) {
    row->outcome = Outcome::kError;
    row->message = "verification: " + r.status.message();
    return;
  }
  row->error = r.out_error;
  row->lse_error = r.lse_error;
  row->tolerance = r.tolerance;
  row->unwritten = r.unwritten;
  if (r.passed()) return;
  row->outcome = Outcome::kFailed;
  std::string why;
  if (r.unwritten > 0) why = std::to_string(r.unwritten) + " outputs unwritten";
  if (!(r.out_error <= r.tolerance)) {
    why += (why.empty() ? "" : ", ") + std::string("error ") + format_double("%.2e", r.out_error) +
           " > tolerance " + format_double("%.0e", r.tolerance);
  }
  if (!(r.lse_error <= r.lse_tolerance)) {
    why += (why.empty() ? "" : ", ") + std::string("lse error ") + format_double("%.2e", r.lse_error) +
           " > " + format_double("%.0e", r.lse_tolerance);
  }
  row->message = why + " (seed " + std::to_string(r.seed) + ")";
}

// Runs one kernel of a group on an existing run (AttentionRun or DecodeRun).
template <typename Run>
void measure(Run* run, Kernel kernel, Kernel reference, const BenchGroup& g, Timer* timer, Row* row) {
  const bool verify = g.verify && reference != kernel;
  if (!verify) row->reference.clear();
  auto check = [&]() {
    Status st = run->run(kernel, timer->stream());
    if (!st) {
      row->outcome = outcome_of(st);
      row->message = st.message();
      return false;
    }
    record_verification(run->verify(reference), row);
    return row->outcome != Outcome::kError;
  };
  if (verify && !g.verify_after_timing && !check()) return;

  TimingPlan plan;
  plan.warmup = g.warmup >= 0 ? g.warmup : timer->default_warmup();
  plan.iters = g.iters > 0 ? g.iters : timer->default_iters();
  plan.max_seconds = g.max_seconds;
  plan.flush_l2 = g.shape.mode == Mode::kDecode;
  Timing t;
  Status st = timer->time([&] { return run->launch(kernel, timer->stream()); }, plan, &t);
  if (!st) {
    if (row->outcome == Outcome::kOk) row->outcome = outcome_of(st);
    row->message = st.message();
    return;
  }
  row->time_ms = t.median_ms;
  row->min_ms = t.min_ms;
  row->runs = t.runs;
  row->cpu_ms = t.cpu_ms;
  if (g.report_rss) row->peak_rss_kb = peak_rss_kb();

  if (verify && g.verify_after_timing) check();
}

double rate_of(testing::AttentionRun* run, double ms, Row* row) {
  return row->tflops = run->flops() / (ms * 1e9);
}
double rate_of(testing::DecodeRun* run, double ms, Row* row) { return row->gbps = run->bytes() / (ms * 1e6); }

// "auto (fa2_mma)": the kernel auto selects for this run.
std::string auto_name(testing::AttentionRun* run) {
  Kernel k = Kernel::kAuto;
  if (!select_kernel(run->args(Kernel::kAuto), run->test_case().varlen, &k)) return "auto";
  return std::string("auto (") + kernel_name(k) + ")";
}
std::string auto_name(testing::DecodeRun* run) {
  Kernel k = Kernel::kAuto;
  if (!select_kernel(run->args(Kernel::kAuto), &k)) return "auto";
  return std::string("auto (") + kernel_name(k) + ")";
}

// All kernels of a group on one kind of run; runs are created per device on first use.
template <typename Run, typename Case>
void run_kernels(const BenchGroup& g, const Case& c, uint64_t seed,
                 const std::function<Status(Device, Timer**)>& timer_for,
                 const std::function<void(const Row&)>& on_row) {
  std::map<int, std::unique_ptr<Run>> runs;  // key: -1 CPU, else CUDA ordinal
  Kernel reference = Kernel::kCpuReference;
  const Status ref_status = kernel_from_name(g.reference.c_str(), &reference);
  for (const std::string& name : g.kernels) {
    Row row;
    row.kernel = name;
    row.reference = g.verify ? g.reference : "";
    row.shape = g.shape;
    row.seed = seed;
    Kernel kernel = Kernel::kAuto;
    Status st = kernel_from_name(name.c_str(), &kernel);
    if (st && g.verify && !ref_status) st = ref_status;
    const Device device = device_for(kernel);
    if (st && device.type == DeviceType::kCUDA && cuda_device_count() == 0) {
      st = Status(StatusCode::kUnsupported, built_with_cuda() ? "no CUDA device" : "built without CUDA");
    }
    Timer* timer = nullptr;
    if (st) st = timer_for(device, &timer);
    const int key = device.type == DeviceType::kCPU ? -1 : device.index;
    if (st && runs.count(key) == 0) {
      std::unique_ptr<Run> created;
      st = Run::create(c, device, seed, &created);
      if (st) runs[key] = std::move(created);
    }
    if (!st) {
      row.outcome = outcome_of(st);
      row.message = st.message();
      on_row(row);
      continue;
    }
    Run* run = runs[key].get();
    if (kernel == Kernel::kAuto) row.kernel = auto_name(run);
    if (g.report_rss) {
      const auto args = run->args(kernel);
      touch_output(args.out);
      touch_output(args.lse);
      row.baseline_rss_kb = peak_rss_kb();
    }
    measure(run, kernel, reference, g, timer, &row);
    if (row.time_ms > 0) rate_of(run, row.time_ms, &row);
    on_row(row);
  }
}

}  // namespace

Device device_for(Kernel kernel) {
  if (is_cpu_kernel(kernel)) return Device::cpu();
  if (kernel == Kernel::kAuto && cuda_device_count() == 0) return Device::cpu();
  return Device::cuda(0);
}

int64_t peak_rss_kb() {
  struct rusage usage;
  if (getrusage(RUSAGE_SELF, &usage) != 0) return -1;
  return static_cast<int64_t>(usage.ru_maxrss);  // KiB on Linux
}

Status Runner::timer_for(Device device, Timer** timer) {
  const int key = device.type == DeviceType::kCPU ? -1 : device.index;
  auto it = timers_.find(key);
  if (it == timers_.end()) {
    std::unique_ptr<Timer> created;
    Status st = make_timer(device, &created);
    if (!st) return st;
    it = timers_.emplace(key, std::move(created)).first;
  }
  *timer = it->second.get();
  return Status::ok();
}

void Runner::run_group(const BenchGroup& g, const std::function<void(const Row&)>& on_row) {
  const uint64_t seed = g.seed != 0 ? g.seed : testing::next_seed();
  auto timer_for = [this](Device d, Timer** t) { return this->timer_for(d, t); };
  if (g.shape.mode == Mode::kDecode) {
    run_kernels<testing::DecodeRun>(g, decode_case(g.shape), seed, timer_for, on_row);
  } else {
    run_kernels<testing::AttentionRun>(g, attention_case(g.shape), seed, timer_for, on_row);
  }
}

}  // namespace sfa::bench
