#include "dispatch/intake.h"

#include <future>

namespace gridtrust::dispatch {

Intake::Intake(Engine& engine, std::function<std::int64_t()> now, IntakeOptions options)
    : engine_(engine), now_(std::move(now)), options_(options) {
  unsigned n = options_.lanes ? options_.lanes : std::max(1u, std::thread::hardware_concurrency());
  if (options_.max_batch == 0) options_.max_batch = 1;
  for (unsigned i = 0; i < n; ++i) lanes_.push_back(std::make_unique<Lane>());
  decider_ = std::thread([this] { run_decider(); });
  for (auto& lane : lanes_) lane->thread = std::thread([this, l = lane.get()] { run(*l); });
}

Intake::~Intake() {
  // The lanes first (they verify what they still hold and hand it on), then the decider
  // (it decides everything handed on).
  for (auto& lane : lanes_) {
    {
      std::lock_guard g(lane->mu);
      lane->stopping = true;
    }
    lane->cv.notify_all();
  }
  for (auto& lane : lanes_) lane->thread.join();
  {
    std::lock_guard g(decider_mu_);
    decider_stopping_ = true;
  }
  decider_cv_.notify_all();
  decider_.join();
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
  // Stopping: the lanes and the decider may be gone; decided here, in the caller's thread.
  Decision d;
  try {
    d = engine_.submit(message, now_(), caller);
  } catch (const std::exception& e) {
    d.caller = std::move(caller);
    d.reason = "internal.error";
    d.detail = std::string("the engine threw: ") + e.what();
  }
  done(std::move(d));
}

Decision Intake::submit_wait(boost::json::object message, const std::string& station, std::string caller) {
  auto promise = std::make_shared<std::promise<Decision>>();
  auto fut = promise->get_future();
  submit(std::move(message), station, [promise](Decision d) { promise->set_value(std::move(d)); }, std::move(caller));
  return fut.get();
}

void Intake::refuse(std::vector<Done>& done, const std::vector<std::string>& callers, const std::exception& e) {
  // A bug must not take the intake (and the daemon) down: each setpoint of the group is
  // refused with internal.error, as the router answers an exception.
  for (std::size_t i = 0; i < done.size(); ++i) {
    Decision d;
    if (i < callers.size()) d.caller = callers[i];
    d.reason = "internal.error";
    d.detail = std::string("the engine threw: ") + e.what();
    try {
      done[i](std::move(d));
    } catch (...) {
      // A caller's callback must not take the intake down with the setpoints behind it.
    }
  }
}

void Intake::run(Lane& lane) {
  std::vector<Item> batch;
  for (;;) {
    batch.clear();
    {
      std::unique_lock lk(lane.mu);
      lane.cv.wait(lk, [&] { return lane.stopping || !lane.queue.empty(); });
      if (lane.queue.empty()) return;  // stopping, and everything handed on
      while (!lane.queue.empty() && batch.size() < options_.max_batch) {
        batch.push_back(std::move(lane.queue.front()));
        lane.queue.pop_front();
      }
    }
    std::unique_ptr<Verified> v;
    try {
      v = std::make_unique<Verified>();
      v->messages.reserve(batch.size());
      v->done.reserve(batch.size());
      v->callers.reserve(batch.size());
      for (auto& item : batch) {
        v->messages.push_back(std::move(item.message));
        v->done.push_back(std::move(item.done));
        v->callers.push_back(std::move(item.caller));
      }
      v->verified.emplace(engine_.verify(v->messages, now_(), v->callers));
      {
        std::lock_guard g(decider_mu_);
        const std::size_t n = v->messages.size();
        verified_.push_back(std::move(v));
        waiting_ += n;
      }
      decider_cv_.notify_one();
    } catch (const std::exception& e) {
      // Every setpoint of the batch is answered, whether it got into `v` or not (the
      // moves into it do not throw once its vectors are reserved).
      std::vector<Done> done;
      std::vector<std::string> callers;
      if (v) {
        done = std::move(v->done);
        callers = std::move(v->callers);
      }
      for (std::size_t i = done.size(); i < batch.size(); ++i) {
        done.push_back(std::move(batch[i].done));
        callers.push_back(std::move(batch[i].caller));
      }
      refuse(done, callers, e);
    }
  }
}

void Intake::run_decider() {
  // A group bounded as the lanes bound their batches, one batch per lane.
  const std::size_t max_group = options_.max_batch * lanes_.size();
  std::vector<std::unique_ptr<Verified>> group;
  for (;;) {
    group.clear();
    {
      std::unique_lock lk(decider_mu_);
      decider_cv_.wait(lk, [&] { return decider_stopping_ || !verified_.empty(); });
      if (verified_.empty()) return;  // stopping, and everything decided
      // Every batch waiting, in the order handed on, while they share one `now`.
      std::size_t size = 0;
      const std::int64_t now = verified_.front()->verified->now();
      while (!verified_.empty() && verified_.front()->verified->now() == now &&
             (group.empty() || size + verified_.front()->verified->size() <= max_group)) {
        size += verified_.front()->verified->size();
        group.push_back(std::move(verified_.front()));
        verified_.pop_front();
      }
      waiting_ -= size;
    }
    std::vector<std::vector<Decision>> decided;
    try {
      std::vector<Engine::Verified> groups;
      groups.reserve(group.size());
      for (auto& v : group) groups.push_back(std::move(*v->verified));
      decided = engine_.decide(std::move(groups));
    } catch (const std::exception& e) {
      for (auto& v : group) refuse(v->done, v->callers, e);
      continue;
    }
    std::size_t setpoints = 0;
    for (std::size_t b = 0; b < group.size(); ++b) {
      setpoints += decided[b].size();
      for (std::size_t i = 0; i < decided[b].size() && i < group[b]->done.size(); ++i) {
        try {
          group[b]->done[i](std::move(decided[b][i]));
        } catch (...) {
          // A caller's callback must not take the intake down with the setpoints behind it.
        }
      }
    }
    std::lock_guard g(stats_mu_);
    ++batches_;
    setpoints_ += setpoints;
  }
}

std::size_t Intake::waiting_to_decide() const {
  std::lock_guard g(decider_mu_);
  return waiting_;
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
