// A minimal parallel loop for the CPU kernels: items handed out one at a time (an atomic
// counter, so uneven items such as causal tiles balance) to up to num_threads() workers.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "cpu/cpu_backend.h"

namespace sfa::cpu {

// Workers parallel_for() uses for `items` items: scratch is allocated per worker up front.
inline int worker_count(int64_t items) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(num_threads(), items)));
}

// Calls body(worker, item) for every item in [0, items), worker in [0, worker_count(items)).
// The calling thread is worker 0; if a thread cannot be started the others take its share.
// `body` must not throw.
template <typename Body>
void parallel_for(int64_t items, Body body) {
  if (items <= 0) return;
  const int workers = worker_count(items);
  std::atomic<int64_t> next{0};
  auto work = [&](int worker) {
    for (int64_t item = next.fetch_add(1); item < items; item = next.fetch_add(1)) body(worker, item);
  };
  std::vector<std::thread> threads;
  try {
    threads.reserve(workers - 1);
    for (int w = 1; w < workers; ++w) threads.emplace_back(work, w);
  } catch (...) {
    // Fewer threads than planned: the started ones and this thread finish the items.
  }
  work(0);
  for (std::thread& t : threads) t.join();
}

}  // namespace sfa::cpu
