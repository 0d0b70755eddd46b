// sfa-bench results: one row per (kernel, shape), printed as an aligned table or as JSON lines.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench_options.h"

namespace sfa::bench {

enum class Outcome {
  kOk,           // ran, and matched the reference (or verification was off)
  kFailed,       // ran, but its error exceeds the tolerance, or it left outputs unwritten
  kUnsupported,  // the kernel cannot serve this shape, or is not built / has no device here
  kError,        // the call or the setup returned an error
};

const char* outcome_name(Outcome outcome);

struct Row {
  std::string kernel;
  std::string reference;  // empty: not verified
  Shape shape;
  Outcome outcome = Outcome::kOk;
  std::string message;  // why it failed or was skipped
  double time_ms = -1;  // median; < 0 when not timed
  double min_ms = -1;
  int runs = 0;
  double cpu_ms = -1;  // CPU kernels: median process CPU time per run (all threads)
  double tflops = -1;  // prefill/varlen
  double gbps = -1;    // decode: bytes of K and V read per second
  double error = -1;   // ||out - ref|| / ||ref||; < 0 when not verified
  double lse_error = -1;
  double tolerance = -1;
  int64_t unwritten = 0;
  uint64_t seed = 0;
  int64_t peak_rss_kb = -1;      // after timing (--report-rss)
  int64_t baseline_rss_kb = -1;  // after the inputs were made, before any kernel ran
};

// "1.23 ms", "456 us", "12.3 s".
std::string format_time(double ms);

void print_table(const std::vector<Row>& rows, bool with_rss);
void print_json(const Row& row);
std::string to_json(const Row& row);

// Reads back a row printed by to_json() (the cpu-memory suite reads its child processes' rows).
bool from_json(const std::string& line, Row* row);

}  // namespace sfa::bench
