#include "runtime/thread_pool.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace lossforge {
namespace {

// One parallel_for call. Threads claim task indices until none are left; the
// last one to finish a task wakes the caller. Shared ownership: a worker may
// pick the job from the queue after the caller has already returned.
struct Job {
  const std::function<void(size_t)>* task;
  size_t count;
  std::atomic<size_t> next{0};
  std::atomic<size_t> finished{0};
  std::mutex mutex;
  std::condition_variable done;

  void work() {
    for (size_t i; (i = next.fetch_add(1)) < count;) {
      (*task)(i);
      if (finished.fetch_add(1) + 1 == count) {
        std::lock_guard lock(mutex);
        done.notify_all();
      }
    }
  }
};

class Pool {
 public:
  static Pool& instance() {
    // Never destroyed: workers may still sleep on the queue at exit.
    static Pool* pool = new Pool;
    return *pool;
  }

  void run(size_t count, size_t workers, const std::function<void(size_t)>& task) {
    auto job = std::make_shared<Job>();
    job->task = &task;
    job->count = count;
    const size_t helpers = std::min(workers, count) - 1;
    {
      std::lock_guard lock(mutex_);
      while (threads_.size() < helpers) threads_.emplace_back([this] { serve(); });
      for (size_t h = 0; h < helpers; ++h) queue_.push_back(job);
    }
    wake_.notify_all();
    job->work();
    std::unique_lock lock(job->mutex);
    job->done.wait(lock, [&] { return job->finished.load() == count; });
  }

 private:
  void serve() {
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return !queue_.empty(); });
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      job->work();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::vector<std::thread> threads_;
};

}  // namespace

void parallel_for(size_t count, size_t workers, const std::function<void(size_t)>& task) {
  if (count == 0) return;
  if (workers <= 1 || count == 1) {
    for (size_t i = 0; i < count; ++i) task(i);
    return;
  }
  Pool::instance().run(count, workers, task);
}

}  // namespace lossforge
