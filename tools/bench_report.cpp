// sfa-bench output: the aligned table, JSON lines, and reading a JSON line back.
#include "bench_report.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

namespace sfa::bench {
namespace {

std::string printf_string(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}

std::string format_rate(const Row& row) {
  if (row.tflops >= 0) {
    return printf_string(row.tflops >= 10    ? "%.1f TFLOP/s"
                         : row.tflops >= 0.1 ? "%.3f TFLOP/s"
                                             : "%.4f TFLOP/s",
                         row.tflops);
  }
  if (row.gbps >= 0) return printf_string(row.gbps >= 100 ? "%.0f GB/s" : "%.2f GB/s", row.gbps);
  return "-";
}

std::string format_error(const Row& row) {
  if (row.error < 0) return "-";
  return printf_string("%.2e", row.error);
}

std::string format_status(const Row& row) {
  std::string text = outcome_name(row.outcome);
  if (!row.message.empty()) text += ": " + row.message;
  return text;
}

std::string format_mb(int64_t kb) { return kb < 0 ? "-" : printf_string("%.1f MB", kb / 1024.0); }

std::string json_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
          out += buffer;
        } else {
          out += c;
        }
    }
  }
  return out;
}

// A JSON number, or null for "not measured" (negative) values.
std::string json_number(double value) {
  if (value < 0 || !std::isfinite(value)) return "null";
  return printf_string("%.6g", value);
}

// Parses one flat JSON object of strings, numbers, booleans and nulls into text values.
bool parse_flat_json(const std::string& s, std::map<std::string, std::string>* fields) {
  size_t i = 0;
  auto skip = [&] {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  };
  auto read_string = [&](std::string* out) {
    if (i >= s.size() || s[i] != '"') return false;
    for (++i; i < s.size() && s[i] != '"'; ++i) {
      if (s[i] == '\\' && i + 1 < s.size()) {
        const char e = s[++i];
        if (e == 'n')
          *out += '\n';
        else if (e == 't')
          *out += '\t';
        else if (e == 'u' && i + 4 < s.size()) {
          *out += static_cast<char>(std::strtol(s.substr(i + 1, 4).c_str(), nullptr, 16));
          i += 4;
        } else
          *out += e;
      } else {
        *out += s[i];
      }
    }
    if (i >= s.size()) return false;
    ++i;
    return true;
  };
  skip();
  if (i >= s.size() || s[i++] != '{') return false;
  skip();
  if (i < s.size() && s[i] == '}') return true;
  while (i < s.size()) {
    std::string key, value;
    skip();
    if (!read_string(&key)) return false;
    skip();
    if (i >= s.size() || s[i++] != ':') return false;
    skip();
    if (i < s.size() && s[i] == '"') {
      if (!read_string(&value)) return false;
    } else {
      while (i < s.size() && s[i] != ',' && s[i] != '}') value += s[i++];
      while (!value.empty() && value.back() == ' ') value.pop_back();
    }
    (*fields)[key] = value;
    skip();
    if (i < s.size() && s[i] == ',') {
      ++i;
      continue;
    }
    return i < s.size() && s[i] == '}';
  }
  return false;
}

}  // namespace

const char* outcome_name(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk: return "ok";
    case Outcome::kFailed: return "FAIL";
    case Outcome::kUnsupported: return "skipped";
    case Outcome::kError: return "error";
  }
  return "unknown";
}

std::string format_time(double ms) {
  if (ms < 0) return "-";
  if (ms < 1) return printf_string("%.1f us", ms * 1e3);
  if (ms < 1e3) return printf_string("%.3f ms", ms);
  return printf_string("%.2f s", ms / 1e3);
}

void print_table(const std::vector<Row>& rows, bool with_rss) {
  std::vector<std::string> header = {"kernel", "mode",       "shape", "dtype",
                                     "time",   "throughput", "error", "reference"};
  if (with_rss) {
    header.push_back("CPU time");
    header.push_back("peak RSS");
    header.push_back("kernel RSS");
  }
  header.push_back("status");
  std::vector<std::vector<std::string>> cells;
  for (const Row& r : rows) {
    std::vector<std::string> line = {r.kernel,
                                     mode_name(r.shape.mode),
                                     describe_shape(r.shape),
                                     dtype_name(r.shape.dtype),
                                     format_time(r.time_ms),
                                     format_rate(r),
                                     format_error(r),
                                     r.reference.empty() ? "-" : r.reference};
    if (with_rss) {
      line.push_back(format_time(r.cpu_ms));
      line.push_back(format_mb(r.peak_rss_kb));
      line.push_back(
          r.peak_rss_kb < 0 || r.baseline_rss_kb < 0 ? "-" : format_mb(r.peak_rss_kb - r.baseline_rss_kb));
    }
    line.push_back(format_status(r));
    cells.push_back(line);
  }
  // Every column but the last (status, free text) is padded to its widest cell.
  std::vector<size_t> width(header.size(), 0);
  for (size_t c = 0; c < header.size(); ++c) {
    width[c] = header[c].size();
    for (const auto& line : cells) width[c] = std::max(width[c], line[c].size());
  }
  auto print_line = [&](const std::vector<std::string>& line) {
    std::string text;
    for (size_t c = 0; c < line.size(); ++c) {
      text += line[c];
      if (c + 1 < line.size()) text += std::string(width[c] - line[c].size() + 2, ' ');
    }
    std::printf("%s\n", text.c_str());
  };
  print_line(header);
  std::vector<std::string> rule;
  for (size_t c = 0; c < header.size(); ++c)
    rule.push_back(std::string(c + 1 < header.size() ? width[c] : header[c].size(), '-'));
  print_line(rule);
  for (const auto& line : cells) print_line(line);
  std::fflush(stdout);
}

std::string to_json(const Row& r) {
  const Shape& s = r.shape;
  auto str = [](const std::string& key, const std::string& value) {
    return "\"" + key + "\": \"" + json_escape(value) + "\"";
  };
  auto num = [](const std::string& key, const std::string& value) { return "\"" + key + "\": " + value; };
  auto integer = [](int64_t v) { return std::to_string(v); };
  auto boolean = [](bool v) { return std::string(v ? "true" : "false"); };
  const std::vector<std::string> fields = {
      str("kernel", r.kernel),
      str("mode", mode_name(s.mode)),
      str("dtype", dtype_name(s.dtype)),
      num("batch", integer(s.batch)),
      num("seqlen_q", integer(s.seqlen_q)),
      num("seqlen_k", integer(s.seqlen_k)),
      num("heads", integer(s.heads)),
      num("heads_kv", integer(s.heads_kv)),
      num("head_dim", integer(s.head_dim)),
      num("causal", boolean(s.causal)),
      num("window_left", integer(s.window_left)),
      num("window_right", integer(s.window_right)),
      num("softcap", printf_string("%g", s.softcap)),
      num("page_size", integer(s.page_size)),
      num("num_splits", integer(s.num_splits)),
      num("ragged", boolean(s.ragged)),
      num("strided", boolean(s.strided)),
      str("shape", describe_shape(s)),
      str("status", outcome_name(r.outcome)),
      str("message", r.message),
      num("time_ms", json_number(r.time_ms)),
      num("min_ms", json_number(r.min_ms)),
      num("runs", integer(r.runs)),
      num("cpu_ms", json_number(r.cpu_ms)),
      num("tflops", json_number(r.tflops)),
      num("gbps", json_number(r.gbps)),
      str("reference", r.reference),
      num("error", json_number(r.error)),
      num("lse_error", json_number(r.lse_error)),
      num("tolerance", json_number(r.tolerance)),
      num("unwritten", integer(r.unwritten)),
      num("seed", std::to_string(r.seed)),
      num("peak_rss_kb", r.peak_rss_kb < 0 ? "null" : integer(r.peak_rss_kb)),
      num("baseline_rss_kb", r.baseline_rss_kb < 0 ? "null" : integer(r.baseline_rss_kb)),
  };
  std::string text = "{";
  for (size_t i = 0; i < fields.size(); ++i) text += (i ? ", " : "") + fields[i];
  return text + "}";
}

void print_json(const Row& row) {
  std::printf("%s\n", to_json(row).c_str());
  std::fflush(stdout);
}

bool from_json(const std::string& line, Row* r) {
  std::map<std::string, std::string> f;
  if (!parse_flat_json(line, &f) || f.count("kernel") == 0) return false;
  auto number = [&](const char* key, double fallback) {
    auto it = f.find(key);
    return it == f.end() || it->second == "null" ? fallback : std::strtod(it->second.c_str(), nullptr);
  };
  auto integer = [&](const char* key, int64_t fallback) {
    auto it = f.find(key);
    return it == f.end() || it->second == "null" ? fallback : std::strtoll(it->second.c_str(), nullptr, 10);
  };
  r->kernel = f["kernel"];
  r->reference = f["reference"];
  r->message = f["message"];
  const std::string status = f["status"];
  r->outcome = status == "ok"        ? Outcome::kOk
               : status == "FAIL"    ? Outcome::kFailed
               : status == "skipped" ? Outcome::kUnsupported
                                     : Outcome::kError;
  r->time_ms = number("time_ms", -1);
  r->min_ms = number("min_ms", -1);
  r->runs = static_cast<int>(integer("runs", 0));
  r->cpu_ms = number("cpu_ms", -1);
  r->tflops = number("tflops", -1);
  r->gbps = number("gbps", -1);
  r->error = number("error", -1);
  r->lse_error = number("lse_error", -1);
  r->tolerance = number("tolerance", -1);
  r->unwritten = integer("unwritten", 0);
  r->seed = std::strtoull(f["seed"].c_str(), nullptr, 10);
  r->peak_rss_kb = integer("peak_rss_kb", -1);
  r->baseline_rss_kb = integer("baseline_rss_kb", -1);
  return true;
}

}  // namespace sfa::bench
