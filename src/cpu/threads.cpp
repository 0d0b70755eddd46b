// The CPU backend's thread count: SFA_NUM_THREADS when set to a positive integer, else the
// hardware concurrency.
#include <cstdlib>
#include <thread>

#include "cpu/cpu_backend.h"

namespace sfa::cpu {

int num_threads() {
  if (const char* env = std::getenv("SFA_NUM_THREADS")) {
    char* end = nullptr;
    const long n = std::strtol(env, &end, 10);
    constexpr long kMaxThreads = 1024;
    if (end != env && *end == '\0' && n > 0) return static_cast<int>(n < kMaxThreads ? n : kMaxThreads);
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

}  // namespace sfa::cpu
