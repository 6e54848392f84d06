#pragma once
// Batching in front of the engine for setpoints that arrive one by one (one HTTP
// request, one station message each): under load, whatever queued up while a batch
// was being decided goes through Engine::submit_many together, so that the durable
// sequence commit, the audit entry and the daemon's signature on the emitted commands
// are shared; when idle, a setpoint goes through alone at once. Nothing waits for a
// batch to fill.
//
// Order: setpoints are routed to a lane by their station, and a lane decides its
// batches one after the other, so one station's setpoints are decided in the order
// they were handed in (a later sequence number never overtakes an earlier one). The
// lanes run in parallel (signature checks are the CPU-heavy part).
//
// The destructor decides everything still queued, then stops.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/json/object.hpp>

#include "dispatch/engine.h"

namespace gridtrust::dispatch {

struct IntakeOptions {
  unsigned lanes = 0;            // 0: one per hardware thread
  std::size_t max_batch = 256;  // bounds the time a setpoint waits behind its batch
};

class Intake {
 public:
  using Done = std::function<void(Decision)>;
  Intake(Engine& engine, std::function<std::int64_t()> now, IntakeOptions options = {});
  ~Intake();
  Intake(const Intake&) = delete;
  Intake& operator=(const Intake&) = delete;

  // `station`: where the message says it goes (used for ordering only; the engine
  // checks the signed claim). `done` runs on a lane's thread, once.
  // `caller` is recorded with the decision (Engine::submit).
  void submit(boost::json::object message, const std::string& station, Done done, std::string caller = {});
  Decision submit_wait(boost::json::object message, const std::string& station, std::string caller = {});

  // Batches decided so far and setpoints in them (for the benchmark's figures).
  std::uint64_t batches() const;
  std::uint64_t setpoints() const;

 private:
  struct Item {
    boost::json::object message;
    Done done;
    std::string caller;
  };
  struct Lane {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Item> queue;
    bool stopping = false;
    std::thread thread;
  };
  void run(Lane& lane);
  std::vector<Decision> decide(const std::vector<boost::json::object>& messages, const std::vector<std::string>& callers);

  Engine& engine_;
  std::function<std::int64_t()> now_;
  IntakeOptions options_;
  std::vector<std::unique_ptr<Lane>> lanes_;
  mutable std::mutex stats_mu_;
  std::uint64_t batches_ = 0, setpoints_ = 0;
};

}  // namespace gridtrust::dispatch
