// A small process-wide pool of worker threads for splitting rows of a batch.
//
// parallel_for(count, workers, task) runs task(0) .. task(count - 1) on at most
// `workers` threads, the caller being one of them, and returns when all are
// done. Any number of callers may use the pool at once: each call waits only
// for its own tasks. The pool grows to the largest `workers` ever asked for
// (minus the caller) and its threads live until the process exits.
// Tasks must not throw: a back end prepares everything that can fail first.
#pragma once

#include <cstddef>
#include <functional>

namespace lossforge {

void parallel_for(size_t count, size_t workers, const std::function<void(size_t)>& task);

}  // namespace lossforge
