#pragma once
// Batching in front of the engine for setpoints that arrive one by one (one HTTP
// request, one station message each): under load, whatever queued up while a batch
// was being decided goes through the engine together, so that the durable sequence
// commit, the audit entry and the daemon's signature on the emitted commands are
// shared; when idle, a setpoint goes through alone at once. Nothing waits for a batch
// to fill.
//
// A pipeline of two stages. Lanes (one per core by default) verify batches
// (Engine::verify: the signature checks, the CPU-heavy part) in parallel; one decider
// thread takes the verified batches waiting (same `now`, up to max_batch setpoints, at
// least one batch), and decides, records and emits them as one group (Engine::decide). So the lanes verify the next setpoints
// while a group waits for its commit and its signature, instead of waiting with it.
//
// Order: setpoints are routed to a lane by their station; a lane verifies its batches
// one after the other and hands them on in that order, and the single decider takes
// them in the order they were handed on. So one station's setpoints are decided in the
// order they were handed in (a later sequence number never overtakes an earlier one).
//
// Time: a batch is verified, and then decided, with the time its lane read before
// verifying it (freshness is judged on receipt); batches of different times are not
// decided as one group.
//
// The destructor decides everything still queued, then stops. A setpoint handed in
// while it runs still comes after those handed in before it for its station.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
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
  // checks the signed claim). `done` runs once, on the intake's decider thread (or the
  // caller's, once the intake is stopping); it must not wait for the intake.
  // `caller` is recorded with the decision (Engine::submit).
  void submit(boost::json::object message, const std::string& station, Done done, std::string caller = {});
  Decision submit_wait(boost::json::object message, const std::string& station, std::string caller = {});
  // Decides everything handed in so far and stops the intake's threads (the destructor
  // does it too). submit() may run meanwhile, from other threads; from then on it
  // decides in its caller's thread. Again is harmless (the destructor calls it); not
  // from two threads at once.
  void stop();

  // Setpoints verified and waiting for the decider (a busy store or HSM shows here).
  std::size_t waiting_to_decide() const;
  // Groups decided so far and setpoints in them (for the benchmark's figures).
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
    bool stopped = false;  // its thread took its last batch: nothing queued here is seen any more
    std::thread thread;
  };
  struct Verified {  // a lane's batch, verified, waiting for the decider
    std::vector<boost::json::object> messages;  // (Engine::Verified points into them)
    std::vector<Done> done;
    std::vector<std::string> callers;
    std::optional<Engine::Verified> verified;
  };
  void run(Lane& lane);
  void run_decider();
  // Verifies the items (taken from them); every item is answered if it throws.
  std::unique_ptr<Verified> verify(std::vector<Item>& items);
  // Decides the batches as one group and answers each setpoint.
  void decide(std::vector<std::unique_ptr<Verified>>& group);
  // Each `done` gets internal.error (what the router answers an exception with).
  static void refuse(std::vector<Done>& done, const std::vector<std::string>& callers, const std::string& why);

  Engine& engine_;
  std::function<std::int64_t()> now_;
  IntakeOptions options_;
  std::vector<std::unique_ptr<Lane>> lanes_;
  mutable std::mutex decider_mu_;
  std::condition_variable decider_cv_;
  std::deque<std::unique_ptr<Verified>> verified_;
  std::size_t waiting_ = 0;  // setpoints in verified_
  bool decider_stopping_ = false;
  bool decider_stopped_ = false;  // it took its last group
  std::thread decider_;
  mutable std::mutex stats_mu_;
  std::uint64_t batches_ = 0, setpoints_ = 0;
};

}  // namespace gridtrust::dispatch
