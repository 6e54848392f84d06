#pragma once
// Counts open connections across a listener's sessions; a session holds one Slot for
// its lifetime, so the count drops however the session ends.
#include <atomic>
#include <cstddef>
#include <memory>

namespace gridtrust::daemon {

class ConnectionLimit {
 public:
  class Slot {
   public:
    explicit Slot(std::shared_ptr<std::atomic<std::size_t>> count) : count_(std::move(count)) {}
    Slot(Slot&&) = default;
    Slot(const Slot&) = delete;  // a copy would release the slot twice
    Slot& operator=(const Slot&) = delete;
    ~Slot() {
      if (count_) count_->fetch_sub(1);
    }

   private:
    std::shared_ptr<std::atomic<std::size_t>> count_;
  };

  explicit ConnectionLimit(std::size_t max) : max_(max) {}

  // A slot, or nothing when `max` connections are open already.
  std::unique_ptr<Slot> try_acquire() {
    if (count_->fetch_add(1) >= max_.load()) {
      count_->fetch_sub(1);
      return nullptr;
    }
    return std::make_unique<Slot>(count_);
  }
  std::size_t open() const { return count_->load(); }
  // SIGHUP: applies to the next connection; a lower limit closes none that are open.
  void set_max(std::size_t max) { max_.store(max); }

 private:
  std::atomic<std::size_t> max_;
  std::shared_ptr<std::atomic<std::size_t>> count_ = std::make_shared<std::atomic<std::size_t>>(0);
};

}  // namespace gridtrust::daemon
