// The queue of a pipeline stage: items come out oldest work first, by key
// (epoch, block, step), and in arrival order among equal keys. The DiT
// pipeline's exactness rests on this order: a stage runs the items of one
// denoising step in block order (each step's KV ring needs its blocks in
// order), and a sink/prompt version before the first block that uses it
// (its key is that block's). Oldest-first rather than first-in-first-out
// keeps the stages busy: a block's next step, coming back from the last
// stage, goes before a newer block's first step, so the oldest block leaves
// the pipeline as soon as it can and the stage after it is not starved.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <tuple>

namespace la::parallel {

struct WorkKey {
  int64_t epoch = 0, block = 0;
  int step = 0;
  bool operator<(const WorkKey& o) const {
    return std::tie(epoch, block, step) < std::tie(o.epoch, o.block, o.step);
  }
};

template <typename T>
class WorkQueue {
 public:
  void push(const WorkKey& key, T item) {
    {
      std::lock_guard<std::mutex> g(m_);
      items_.emplace(std::make_pair(key, next_++), std::move(item));
    }
    cv_.notify_one();
  }
  // Waits for an item; nullopt once closed and empty.
  std::optional<T> pop() {
    std::unique_lock<std::mutex> g(m_);
    cv_.wait(g, [&] { return closed_ || !items_.empty(); });
    if (items_.empty()) return std::nullopt;
    T item = std::move(items_.begin()->second);
    items_.erase(items_.begin());
    return item;
  }
  void close() {
    {
      std::lock_guard<std::mutex> g(m_);
      closed_ = true;
    }
    cv_.notify_all();
  }

 private:
  struct Order {
    bool operator()(const std::pair<WorkKey, uint64_t>& a, const std::pair<WorkKey, uint64_t>& b) const {
      if (a.first < b.first) return true;
      if (b.first < a.first) return false;
      return a.second < b.second;
    }
  };
  std::mutex m_;
  std::condition_variable cv_;
  std::map<std::pair<WorkKey, uint64_t>, T, Order> items_;
  uint64_t next_ = 0;
  bool closed_ = false;
};

}  // namespace la::parallel
