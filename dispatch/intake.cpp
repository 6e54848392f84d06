#include "dispatch/intake.h"

#include <future>

namespace gridtrust::dispatch {

namespace {
std::string what_of(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "an unknown exception";
  }
}
}  // namespace

Intake::Intake(Engine& engine, std::function<std::int64_t()> now, IntakeOptions options)
    : engine_(engine), now_(std::move(now)), options_(options) {
  unsigned n = options_.lanes ? options_.lanes : std::max(1u, std::thread::hardware_concurrency());
  if (options_.max_batch == 0) options_.max_batch = 1;
  for (unsigned i = 0; i < n; ++i) lanes_.push_back(std::make_unique<Lane>());
  try {
    decider_ = std::thread([this] { run_decider(); });
    for (auto& lane : lanes_) lane->thread = std::thread([this, l = lane.get()] { run(*l); });
  } catch (...) {
    stop();  // the threads that did start
    throw;
  }
}

Intake::~Intake() { stop(); }

void Intake::stop() {
  // The lanes first (they hand on what they hold), then the decider (it decides it all).
  for (auto& lane : lanes_) {
    {
      std::lock_guard g(lane->mu);
      lane->stopping = true;
    }
    lane->cv.notify_all();
  }
  for (auto& lane : lanes_)
    if (lane->thread.joinable()) lane->thread.join();
  {
    std::lock_guard g(decider_mu_);
    decider_stopping_ = true;
  }
  decider_cv_.notify_all();
  if (decider_.joinable()) decider_.join();
}

void Intake::submit(boost::json::object message, const std::string& station, Done done, std::string caller) {
  Lane& lane = *lanes_[std::hash<std::string>{}(station) % lanes_.size()];
  std::vector<Item> items;
  {
    std::lock_guard g(lane.mu);
    if (!lane.stopped) {  // (a stopping lane still takes everything queued before it stops)
      lane.queue.push_back(Item{std::move(message), std::move(done), std::move(caller)});
      lane.cv.notify_one();
      return;
    }
  }
  // The lane has stopped (the intake is being destroyed): verified here and handed to the
  // decider while it runs, behind what the lane handed on; once it has stopped too,
  // decided here, after everything.
  items.push_back(Item{std::move(message), std::move(done), std::move(caller)});
  std::vector<std::unique_ptr<Verified>> group;
  if (auto v = verify(items)) group.push_back(std::move(v));
  if (group.empty()) return;  // answered
  {
    std::lock_guard g(decider_mu_);
    if (!decider_stopped_) {
      waiting_ += group.front()->messages.size();
      verified_.push_back(std::move(group.front()));
      decider_cv_.notify_all();
      return;
    }
  }
  decide(group);
}

Decision Intake::submit_wait(boost::json::object message, const std::string& station, std::string caller) {
  auto promise = std::make_shared<std::promise<Decision>>();
  auto fut = promise->get_future();
  submit(std::move(message), station, [promise](Decision d) { promise->set_value(std::move(d)); }, std::move(caller));
  return fut.get();
}

void Intake::refuse(std::vector<Done>& done, const std::vector<std::string>& callers, const std::string& why) {
  // A bug must not take the intake (and the daemon) down: each setpoint of the group is
  // refused with internal.error, as the router answers an exception.
  for (std::size_t i = 0; i < done.size(); ++i) {
    try {
      Decision d;
      if (i < callers.size()) d.caller = callers[i];
      d.reason = "internal.error";
      d.detail = "the engine threw: " + why;
      done[i](std::move(d));
    } catch (...) {
      // A caller's callback must not take the intake down with the setpoints behind it.
    }
  }
}

std::unique_ptr<Intake::Verified> Intake::verify(std::vector<Item>& items) {
  std::unique_ptr<Verified> v;
  try {
    v = std::make_unique<Verified>();
    v->messages.reserve(items.size());
    v->done.reserve(items.size());
    v->callers.reserve(items.size());
    for (auto& item : items) {
      v->messages.push_back(std::move(item.message));
      v->done.push_back(std::move(item.done));
      v->callers.push_back(std::move(item.caller));
    }
    v->verified.emplace(engine_.verify(v->messages, now_(), v->callers));
    return v;
  } catch (...) {
    // Every setpoint is answered, whether it got into `v` or not (the moves into it do
    // not throw once its vectors are reserved).
    const std::string why = what_of(std::current_exception());
    std::vector<Done> done;
    std::vector<std::string> callers;
    if (v) {
      done = std::move(v->done);
      callers = std::move(v->callers);
    }
    for (std::size_t i = done.size(); i < items.size(); ++i) {
      done.push_back(std::move(items[i].done));
      callers.push_back(std::move(items[i].caller));
    }
    refuse(done, callers, why);
    return nullptr;
  }
}

void Intake::decide(std::vector<std::unique_ptr<Verified>>& group) {
  std::vector<std::vector<Decision>> decided;
  try {
    std::vector<Engine::Verified> groups;
    groups.reserve(group.size());
    for (auto& v : group) groups.push_back(std::move(*v->verified));
    decided = engine_.decide(std::move(groups));
  } catch (...) {
    const std::string why = what_of(std::current_exception());
    for (auto& v : group) refuse(v->done, v->callers, why);
    return;
  }
  std::size_t setpoints = 0;
  for (std::size_t b = 0; b < group.size(); ++b) {
    auto& done = group[b]->done;
    const std::size_t n = b < decided.size() ? decided[b].size() : 0;
    setpoints += n;
    for (std::size_t i = 0; i < done.size(); ++i) {
      if (i >= n) {  // (the engine answers every message; should it not, the caller still hears)
        std::vector<Done> rest(std::make_move_iterator(done.begin() + static_cast<std::ptrdiff_t>(i)),
                               std::make_move_iterator(done.end()));
        refuse(rest, {}, "no decision for this setpoint");
        break;
      }
      try {
        done[i](std::move(decided[b][i]));
      } catch (...) {
        // A caller's callback must not take the intake down with the setpoints behind it.
      }
    }
  }
  std::lock_guard g(stats_mu_);
  ++batches_;
  setpoints_ += setpoints;
}

void Intake::run(Lane& lane) {
  std::vector<Item> batch;
  for (;;) {
    batch.clear();
    {
      std::unique_lock lk(lane.mu);
      lane.cv.wait(lk, [&] { return lane.stopping || !lane.queue.empty(); });
      if (lane.queue.empty()) {  // stopping, and everything handed on
        lane.stopped = true;
        return;
      }
      while (!lane.queue.empty() && batch.size() < options_.max_batch) {
        batch.push_back(std::move(lane.queue.front()));
        lane.queue.pop_front();
      }
    }
    auto v = verify(batch);
    if (!v) continue;  // answered
    {
      std::lock_guard g(decider_mu_);
      waiting_ += v->messages.size();
      verified_.push_back(std::move(v));
    }
    decider_cv_.notify_one();
  }
}

void Intake::run_decider() {
  std::vector<std::unique_ptr<Verified>> group;
  for (;;) {
    group.clear();
    {
      std::unique_lock lk(decider_mu_);
      decider_cv_.wait(lk, [&] { return decider_stopping_ || !verified_.empty(); });
      if (verified_.empty()) {  // stopping, and everything decided
        decider_stopped_ = true;
        return;
      }
      // Every batch waiting, in the order handed on, while they share one `now`, up to
      // max_batch setpoints (at least one batch).
      std::size_t size = 0;
      const std::int64_t now = verified_.front()->verified->now();
      while (!verified_.empty() && verified_.front()->verified->now() == now &&
             (group.empty() || size + verified_.front()->verified->size() <= options_.max_batch)) {
        size += verified_.front()->verified->size();
        group.push_back(std::move(verified_.front()));
        verified_.pop_front();
      }
      waiting_ -= size;
    }
    decide(group);
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
