#include "dispatch/intake.h"

#include <future>

namespace gridtrust::dispatch {

Intake::Intake(Engine& engine, std::function<std::int64_t()> now, IntakeOptions options)
    : engine_(engine), now_(std::move(now)), options_(options) {
  unsigned n = options_.lanes ? options_.lanes : std::max(1u, std::thread::hardware_concurrency());
  if (options_.max_batch == 0) options_.max_batch = 1;
  for (unsigned i = 0; i < n; ++i) lanes_.push_back(std::make_unique<Lane>());
  for (auto& lane : lanes_) lane->thread = std::thread([this, l = lane.get()] { run(*l); });
}

Intake::~Intake() {
  for (auto& lane : lanes_) {
    {
      std::lock_guard g(lane->mu);
      lane->stopping = true;
    }
    lane->cv.notify_all();
  }
  for (auto& lane : lanes_) lane->thread.join();
}

void Intake::submit(boost::json::object message, const std::string& station, Done done, std::string caller) {
  Lane& lane = *lanes_[std::hash<std::string>{}(station) % lanes_.size()];
  {
    std::lock_guard g(lane.mu);
    if (!lane.stopping) {
      lane.queue.push_back(Item{std::move(message), std::move(done), std::move(caller)});
      lane.cv.notify_one();
      return;
    }
  }
  // Stopping: the lane may be gone; decided here, in the caller's thread.
  std::vector<boost::json::object> one;
  one.push_back(std::move(message));
  done(std::move(decide(one, {std::move(caller)}).front()));
}

Decision Intake::submit_wait(boost::json::object message, const std::string& station, std::string caller) {
  auto promise = std::make_shared<std::promise<Decision>>();
  auto fut = promise->get_future();
  submit(std::move(message), station, [promise](Decision d) { promise->set_value(std::move(d)); }, std::move(caller));
  return fut.get();
}

std::vector<Decision> Intake::decide(const std::vector<boost::json::object>& messages,
                                     const std::vector<std::string>& callers) {
  try {
    return messages.size() == 1 ? std::vector<Decision>{engine_.submit(messages[0], now_(), callers.at(0))}
                                : engine_.submit_many(messages, now_(), callers);
  } catch (const std::exception& e) {
    // A bug must not take the lane (and the daemon) down: each setpoint of the group
    // is refused with internal.error, as the router answers an exception.
    std::vector<Decision> ds(messages.size());
    for (std::size_t i = 0; i < ds.size(); ++i) {
      Decision& d = ds[i];
      if (i < callers.size()) d.caller = callers[i];
      d.reason = "internal.error";
      d.detail = std::string("the engine threw: ") + e.what();
    }
    return ds;
  }
}

void Intake::run(Lane& lane) {
  std::vector<Item> batch;
  std::vector<boost::json::object> messages;
  std::vector<std::string> callers;
  for (;;) {
    batch.clear();
    {
      std::unique_lock lk(lane.mu);
      lane.cv.wait(lk, [&] { return lane.stopping || !lane.queue.empty(); });
      if (lane.queue.empty()) return;  // stopping, and everything decided
      while (!lane.queue.empty() && batch.size() < options_.max_batch) {
        batch.push_back(std::move(lane.queue.front()));
        lane.queue.pop_front();
      }
    }
    messages.clear();
    callers.clear();
    messages.reserve(batch.size());
    for (auto& item : batch) {
      messages.push_back(std::move(item.message));
      callers.push_back(std::move(item.caller));
    }
    std::vector<Decision> ds = decide(messages, callers);
    {
      std::lock_guard g(stats_mu_);
      ++batches_;
      setpoints_ += ds.size();
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      try {
        batch[i].done(std::move(ds[i]));
      } catch (...) {
        // A caller's callback must not take the lane down with the setpoints behind it.
      }
    }
  }
}

std::uint64_t Intake::batches() const {
  std::lock_guard g(stats_mu_);
  return batches_;
}
std::uint64_t Intake::setpoints() const {
  std::lock_guard g(stats_mu_);
  return setpoints_;
}

}  // namespace gridtrust::dispatch
