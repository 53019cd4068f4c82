// A first-in first-out queue between pipeline threads. The DiT pipeline's
// exactness rests on its order: every stage sees the items of one denoising
// step in block order, and a sink prefill before the blocks that use it.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

namespace la::parallel {

template <typename T>
class WorkQueue {
 public:
  void push(T item) {
    {
      std::lock_guard<std::mutex> g(m_);
      items_.push_back(std::move(item));
    }
    cv_.notify_one();
  }
  // Waits for an item; nullopt once closed and empty.
  std::optional<T> pop() {
    std::unique_lock<std::mutex> g(m_);
    cv_.wait(g, [&] { return closed_ || !items_.empty(); });
    if (items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
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
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<T> items_;
  bool closed_ = false;
};

}  // namespace la::parallel
