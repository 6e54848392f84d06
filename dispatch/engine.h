#pragma once
// The dispatch engine: the one entry point through which a setpoint reaches a
// charger. submit() follows the order of DESIGN.md "Dispatch engine", each failure
// with its own reason code (docs/error-codes.md, dispatch.*):
//   1. signature (protocol::verify_command / verify_batch: form, signer found, JWS)
//   2. the signer's trust: chain to the dispatch trust anchor, dispatch authority,
//      validity, revocation (remembered clean only until the store's revocation
//      epoch moves: a revocation counts from the next message)
//   3. freshness (iat/exp against now, the lifetime cap)
//   4. the target station is in the registry
//   5. sequence above the last accepted for (signer, station), durable before any
//      command leaves
//   6. the station belongs to the signer's aggregator (certificate O= vs registry)
//   7. the setpoint itself (evseId known, schema-level form, operation mode)
//   8. the physical envelope (envelope.h), rejected or clamped per the site's policy
// Every decision, applied, clamped or rejected, carries before/after values and is
// appended to the audit log.
//
// Thread-safe: verification runs outside the engine's lock; the envelope check and
// the commit of the new setpoint run under it, so that two setpoints for one site see
// each other.
#include <condition_variable>
#include <cstdint>
#include <future>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>

#include "dispatch/allocation.h"
#include "dispatch/envelope.h"
#include "dispatch/fleet.h"
#include "dispatch/setpoint.h"
#include "protocol/signed_command.h"
#include "store/store.h"

namespace gridtrust::dispatch {

enum class Outcome { Applied, Clamped, Rejected };
const char* to_string(Outcome o);

inline constexpr const char* kApplied = "dispatch.applied";

struct Decision {
  Outcome outcome = Outcome::Rejected;
  std::string reason;  // kApplied, or the code of the rule that clamped or rejected it
  std::string detail;  // human message (for verification failures, the protocol code and message)
  std::string station;
  int evse = 0;
  std::string ev;
  std::string signer;  // x5t#S256 of the signer, once verified
  std::string caller;  // who handed it in, when the caller says (gridtrustd: role:subject of the client)
  std::uint64_t seq = 0;
  std::optional<OperationMode> mode;
  double requested_lo_w = 0, requested_hi_w = 0;  // before
  double applied_lo_w = 0, applied_hi_w = 0;      // after (0 when rejected)
  double envelope_min_w = 0, envelope_max_w = 0;
  double need_w = 0;  // fleet targets: the charge the EV needed now for its departure
  std::int64_t at = 0;
  std::optional<boost::json::object> command;  // the SetChargingProfileRequest to send (signed when an OutgoingSigner is set)

  bool applied() const { return outcome != Outcome::Rejected; }
  boost::json::object to_json() const;  // without the command
  // Appends the text of json::serialize(to_json()), without building the object.
  void append_json(std::string& out) const;
};

struct FleetDecision {
  Outcome outcome = Outcome::Rejected;
  std::string reason;
  std::string detail;
  std::string group;
  std::string signer;
  std::string caller;
  std::uint64_t seq = 0;
  double target_w = 0, delivered_w = 0, shortfall_w = 0;
  std::vector<Decision> setpoints;  // one per EVSE with a vehicle among the target's stations
  boost::json::object to_json() const;
};

// Signs what the engine emits (the daemon passes its HSM-held signer). Items come
// with action and station set and seq 0; the signer numbers them.
class OutgoingSigner {
 public:
  virtual ~OutgoingSigner() = default;
  virtual Result<std::vector<boost::json::object>> sign(std::vector<protocol::BatchItem> items, std::int64_t now) = 0;
};

// Sequence numbers reserved from the store in blocks (docs/signed-commands.md
// section 6); one item is signed alone, several as one batch (one signature).
class StoreOutgoingSigner final : public OutgoingSigner {
 public:
  StoreOutgoingSigner(protocol::CommandSigner signer, store::Store& store, std::int64_t lifetime_s = 300);
  Result<std::vector<boost::json::object>> sign(std::vector<protocol::BatchItem> items, std::int64_t now) override;

 private:
  protocol::CommandSigner signer_;
  store::Store& store_;
  std::int64_t lifetime_s_;
  std::string fingerprint_;
  std::mutex mu_;
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> blocks_;  // station -> [next, end)
};

struct EngineOptions {
  std::int64_t max_lifetime_s = 3600;
  std::int64_t max_clock_skew_s = 60;
  double default_duration_s = 900;
  SplitPolicy split = SplitPolicy::ProportionalHeadroom;
  std::string actor = "daemon:dispatch";
  bool audit = true;
  std::size_t decision_log_size = 10000;
  int emitted_profile_id = 900;  // chargingProfile.id of profiles built for fleet targets
  bool emit_commands = true;  // false: decide only (the simulation)
  // Commands of groups waiting for their turn signed together under one signature, at
  // most (a group larger than this is still signed whole, alone).
  std::size_t max_shared_signature = 1024;
};

struct EvseStatus {
  std::string station;
  int evse = 0;
  std::optional<Session> session;
  double lo_w = 0, hi_w = 0;  // what it was last told, while that holds
  std::int64_t until = 0;
};
struct SiteStatus {
  Site site;
  double committed_max_w = 0, committed_min_w = 0;
  std::vector<EvseStatus> evses;
};

class Engine {
 public:
  // With a store, the EVSE states it recorded (what each EVSE was last told, until
  // when) are taken up again, so setpoints still in force count against their site
  // after a restart; throws std::runtime_error if they cannot be read.
  Engine(Fleet fleet, protocol::SignerResolver& resolver, store::Store& store, EngineOptions options = {},
         OutgoingSigner* outgoing = nullptr);
  // Without a store: sequence numbers are kept in memory only and nothing is audited
  // (the simulation; never for signed input that must survive a restart).
  Engine(Fleet fleet, protocol::SignerResolver& resolver, store::Store* store, EngineOptions options = {},
         OutgoingSigner* outgoing = nullptr);

  // A signed SetChargingProfileRequest (single).
  // `caller`, where given, is recorded with each decision (the audit entry names it).
  Decision submit(const boost::json::object& message, std::int64_t now, const std::string& caller = {});
  // A signed batch: one signature check for all; then a decision per entry, in order.
  std::vector<Decision> submit_batch(const std::vector<boost::json::object>& entries, std::int64_t now,
                                     const std::string& caller = {});
  // Several single-signed messages that arrived together: each verified on its own,
  // exactly as submit() would; their sequence numbers are made durable in one commit
  // and their decisions audited in one entry. A decision per message, in order.
  // callers[i], if given, is message i's caller.
  std::vector<Decision> submit_many(const std::vector<boost::json::object>& messages, std::int64_t now,
                                    const std::vector<std::string>& callers = {});
  // submit_many in two steps, for a pipeline (dispatch/intake.h): verify() checks the
  // messages' signatures, signers and freshness (steps 1-3; no engine lock, so callers
  // run it in parallel); decide() then takes verified groups of one `now` and decides,
  // records and emits them as one group (steps 4-8), as submit_many would have had them
  // all at once. A decision per message, per group, in order. The messages must
  // outlive decide(). Throws std::invalid_argument for groups of different `now`.
  class Verified;
  Verified verify(const std::vector<boost::json::object>& messages, std::int64_t now,
                  const std::vector<std::string>& callers = {});
  std::vector<std::vector<Decision>> decide(std::vector<Verified> groups);
  // A signed fleet target (action gridtrust.FleetTarget, station "fleet:<group>").
  FleetDecision submit_target(const boost::json::object& message, std::int64_t now, const std::string& caller = {});
  // The allocation behind submit_target, for callers that already hold the authority
  // (the simulation, the daemon's own schedules). Not audited per EVSE when `audit` is false.
  FleetDecision apply_target(const FleetTarget& target, std::int64_t now, const std::string& signer = "",
                             std::uint64_t seq = 0, const std::string& caller = "");

  // Registry updates. Codes: dispatch.bad_registry, dispatch.unknown_reference,
  // dispatch.duplicate_id, dispatch.unknown_ev.
  Status start_session(Session s);
  Status stop_session(const std::string& ev);
  // Drops the EV's session, leaving what its EVSE was last told as it is and recording
  // nothing: for laying recorded sessions over the registry file at a start, where the
  // recorded EVSE states are already the truth.
  Status forget_session(const std::string& ev);
  Status update_soc(const std::string& ev, double soc, std::int64_t at);
  // The EV's session as it is now, if it is plugged in.
  std::optional<Session> session_of(const std::string& ev) const;

  // Codes: dispatch.unknown_station, dispatch.unknown_evse.
  Result<Envelope> envelope_of(const std::string& station, int evse, std::int64_t now, double duration_s);
  Result<SiteStatus> site_status(const std::string& site, std::int64_t now);
  Result<std::vector<EvseStatus>> station_status(const std::string& station, std::int64_t now);
  std::vector<Decision> decisions(std::size_t max) const;  // newest last
  // Groups whose commands wait for their turn to be signed (sign_in_turn).
  std::size_t groups_waiting_to_sign() const;
  Fleet fleet() const;
  const EngineOptions& options() const { return options_; }

 private:
  struct EvseState {
    double lo_w = 0, hi_w = 0;
    std::int64_t until = 0;
    std::optional<double> last_w;
    std::int64_t last_at = 0;
    std::uint64_t version = 0;  // state_version_ when it was last changed
  };
  struct Pending {  // one verified message on its way through steps 4-8
    Decision d;
    const boost::json::object* message = nullptr;
    std::string organisation;
    std::optional<Setpoint> setpoint;
    std::optional<Result<Setpoint>> parsed;  // step 7, worked out before the lock, reported in its place
    bool done = false;
    std::string key;    // its EVSE, once applied
    EvseState before;   // that EVSE's state before it, to undo if it cannot be recorded
    std::uint64_t version = 0;  // the version it gave that EVSE's state
    bool claimed = false;       // its sequence number passed the in-memory check and is to be accepted
    std::uint64_t applied_seq_before = 0;
  };

 public:
  class Verified {  // a group of verified messages on its way to decide()
   public:
    Verified(Verified&&) noexcept = default;
    Verified& operator=(Verified&&) noexcept = default;
    std::int64_t now() const { return now_; }
    std::size_t size() const { return pending_.size(); }

   private:
    friend class Engine;
    Verified() = default;
    std::vector<Pending> pending_;  // (moving the vector keeps its elements in place)
    std::int64_t now_ = 0;
  };

 private:
  void verify_single(Pending& p, const boost::json::object& message, std::int64_t now);
  void finish(std::vector<Pending*>& ps, std::int64_t now, const char* many_action = "dispatch.batch");

  struct InFlight {  // a group decided and handed to the store, its answer not yet taken in
    std::vector<Pending*> decided;
    std::shared_ptr<store::Store::WriteChain> chain;
    bool reverted = false;  // undone, because it or an earlier group of its chain was not recorded
  };

  void check_sequences(std::vector<Pending*>& ps);
  void decide_locked(Pending& p, std::int64_t now);
  struct SiteMember;
  // An EVSE of the registry with what deciding needs of it, found with one hashed
  // lookup (the registry's sites, stations and EVSEs do not change after construction).
  struct Place {
    const Evse* evse = nullptr;
    const Site* site = nullptr;
    EvseState* state = nullptr;                       // in state_
    const std::vector<SiteMember>* members = nullptr;  // its site's EVSEs, itself among them
  };
  // The session plugged into the EVSE `key`, if any.
  const Session* session_locked(const std::string& key) const;
  EnvelopeInput envelope_input_locked(const Place& place, const Session* session, std::int64_t now,
                                      double duration_s, bool ramp) const;
  // A position's turn to sign its commands: passed when it goes out of scope.
  class Turn {
   public:
    Turn(Engine& engine, std::optional<std::uint64_t> position) : engine_(engine), position_(position) {}
    Turn(Turn&& other) noexcept : engine_(other.engine_), position_(std::exchange(other.position_, std::nullopt)) {}
    Turn(const Turn&) = delete;
    Turn& operator=(const Turn&) = delete;
    ~Turn() { pass(); }
    void pass() {  // once: later passes (and the destructor's) do nothing
      if (position_) engine_.pass_turn(*std::exchange(position_, std::nullopt));
    }
    std::optional<std::uint64_t> position() const { return position_; }
    // Hands the position over to whoever passes it from now on (sign_in_turn).
    std::optional<std::uint64_t> take() { return std::exchange(position_, std::nullopt); }

   private:
    Engine& engine_;
    std::optional<std::uint64_t> position_;
  };
  // Builds the applied decisions' commands and, with an OutgoingSigner, signs them in
  // their turn (unsigned commands carry no number and need no turn).
  void emit(std::vector<Pending*>& applied, std::int64_t now, Turn& turn);
  // Signs `items` with the OutgoingSigner in the turn's position, and passes it. The
  // group whose turn it is signs, in one batch, its own items and those of the groups
  // queued right behind it (positions in a row, up to max_shared_signature): one HSM
  // signature for all of them, numbered in the order of their positions. The others
  // wait for their share. A turn without a position (no store) signs at once.
  Result<std::vector<boost::json::object>> sign_in_turn(Turn& turn, std::vector<protocol::BatchItem> items,
                                                        std::int64_t now);
  // The decisions' audit entry (none when auditing is off).
  std::optional<store::AuditEvent> audit_event(const std::vector<const Decision*>& ds, const char* action) const;
  void replay_check(std::vector<Pending*>& ps);  // against the sequence numbers known accepted
  // Steps 5-8 for the group's messages not yet refused (mu_ held): `decided` gets each
  // one decided, `applied` those applied; returns the EVSE states they set.
  std::vector<store::Store::DispatchEvseState> decide_group_locked(std::vector<Pending*>& ps, std::int64_t now,
                                                                   std::vector<Pending*>& decided,
                                                                   std::vector<Pending*>& applied);
  // decide_group, then (under order_mu_, so in the order of deciding) the group's record
  // handed to the store in the engine's write chain; the group stays in flight until
  // settle() takes in the answer. `alone`: the caller holds order_mu_ (until it has
  // settled the group), and the group is decided once no other is in flight.
  struct Submitted {
    std::uint64_t position = 0;
    std::future<Status> recorded;
    std::shared_ptr<store::Store::WriteChain> chain;
  };
  Submitted decide_and_submit(std::vector<Pending*>& ps, std::int64_t now, const char* action,
                              const std::vector<const Decision*>& ds, bool with_claims, std::vector<Pending*>& applied,
                              std::vector<store::Store::SequenceClaim>& claims, bool alone = false);
  // Takes the group out of flight; if it was not recorded, first undoes it and every
  // later group of its chain (they cannot be recorded either), newest first, and starts
  // a fresh chain. Returns whether the group was undone.
  bool settle(std::uint64_t position, const Status& recorded);
  // The store's answer for a submitted group; a store that throws instead of answering
  // (no answer will come) counts as a failed record, which breaks the chain from there.
  static Status wait_recorded(Submitted& sub);
  static std::future<Status> failed_record(const Submitted& sub, const std::string& why);
  void wait_until_settled_locked(std::unique_lock<std::mutex>& lk);  // no group in flight
  // Commands leave in the order their groups were decided (by position), so that the
  // sequence numbers they are signed with follow it and a station keeps the newest.
  // Every position is passed exactly once, whether its group emits or not.
  void pass_turn(std::uint64_t position);
  void advance_turn_locked();  // past the positions passed ahead of their turn; wakes the next
  void undo_group_locked(const std::vector<Pending*>& decided);
  void forget_session_locked(const std::string& ev);
  store::Store::DispatchEvseState snapshot_locked(const std::string& key, const EvseState& st) const;
  // Puts back `before` where the state is still what a failed commit left (version).
  void undo_locked(const std::string& key, std::uint64_t version, const EvseState& before);
  void audit_unsigned(const std::string& subject, const Rejection& why);
  void load_states();  // the recorded EVSE states, at construction (throws if unreadable)
  void log_locked(const Decision& d);

  protocol::SignerResolver& resolver_;
  store::Store* store_;
  EngineOptions options_;
  OutgoingSigner* outgoing_;

  // Held while a group is decided and handed to the store (so records reach the store in
  // the order of deciding), by fleet targets until their durable commit, and by session
  // changes: taken before mu_ and seq_mu_.
  std::mutex order_mu_;
  mutable std::mutex mu_;
  Fleet fleet_;
  struct SiteMember {
    const std::string* key;  // into state_
    EvseState* state;
  };
  // Looked up by key only (hashed); elements do not move, so site_evses_ and places_
  // point into state_, and places_ into site_evses_ and fleet_.
  std::unordered_map<std::string, std::vector<SiteMember>> site_evses_;  // site -> its EVSEs
  std::unordered_map<std::string, Place> places_;                          // by evse key
  std::unordered_map<std::string, const Station*> stations_;               // by id
  std::unordered_map<std::string, std::string> ev_index_;                  // EV -> evse key of its session
  std::unordered_map<std::string, EvseState> state_;                       // by evse key
  std::unordered_map<std::string, std::uint64_t> applied_seq_;             // signer \n station -> last applied
  std::uint64_t state_version_ = 0;                              // grows with every EVSE state change
  std::deque<Decision> log_;
  // Groups whose record is on its way (by position in the chain): the next group is
  // decided while the one before it is written, counting on it; if a record fails, the
  // store refuses every later record of that chain, and the engine undoes them all.
  std::map<std::uint64_t, InFlight> inflight_;
  std::shared_ptr<store::Store::WriteChain> chain_ = std::make_shared<store::Store::WriteChain>();
  std::uint64_t next_position_ = 0;  // under order_mu_
  std::condition_variable settled_cv_;  // with mu_: a group left flight
  mutable std::mutex turn_mu_;
  std::uint64_t turn_next_ = 0;          // the position whose commands may leave now
  std::set<std::uint64_t> turn_passed_;  // positions passed ahead of their turn
  std::map<std::uint64_t, std::condition_variable*> turn_waiters_;  // position -> its waiter
  struct SignRequest {  // a group's commands waiting for its turn to be signed (sign_in_turn)
    std::vector<protocol::BatchItem>* items = nullptr;
    std::int64_t now = 0;
    std::optional<Result<std::vector<boost::json::object>>> result;  // set by the group that signed them
    std::condition_variable cv;
  };
  std::map<std::uint64_t, SignRequest*> sign_queue_;  // by position, under turn_mu_

  std::mutex seq_mu_;
  std::unordered_map<std::string, std::uint64_t> accepted_seq_;  // signer \n station -> last accepted (cache of the store)
};

// Maps a protocol verification code to the dispatch reason code.
std::string dispatch_code_for(const std::string& verify_code);
// The O= of an X509_NAME_oneline subject ("/CN=agg-1/O=Fleet"), empty if none.
std::string organisation_of(const std::string& subject);

}  // namespace gridtrust::dispatch
