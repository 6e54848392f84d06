#include "cli/dispatch_runtime.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <boost/json.hpp>

namespace gridtrust::app {
namespace json = boost::json;

Result<std::vector<json::object>> CommandOutgoingSigner::sign(std::vector<protocol::BatchItem> items, std::int64_t) {
  // The service signs with the daemon's clock, which is what `now` came from.
  std::vector<json::object> out;
  if (items.size() == 1) {
    SignParameters p;
    p.action = items[0].claims.action;
    p.station = items[0].claims.station;
    p.lifetime_s = lifetime_s_;
    GT_TRY_ASSIGN(json::object one, service_->sign(std::move(items[0].message), p));
    out.push_back(std::move(one));
    return out;
  }
  return service_->sign_items(std::move(items), lifetime_s_, false);
}

DispatchRuntime::DispatchRuntime(DispatchConfig config, pki::CertificateAuthority& ca,
                                 std::shared_ptr<CommandService> commands)
    : config_(std::move(config)), resolver_(ca), outgoing_(std::move(commands), config_.command_lifetime_s), ca_(ca) {}

DispatchRuntime::EngineLock::~EngineLock() {
  if (fd >= 0) ::close(fd);  // releases the lock
}

namespace {

// The store's dispatch lock, held exclusively by the returned descriptor; waits up to
// `wait_ms` for another holder to let go.
Result<int> take_engine_lock(const std::string& store_path, int wait_ms) {
  const std::string path = store_path + "-dispatch.lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return reject("store.lock_failed", "cannot open " + path + ": " + std::strerror(errno));
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  for (;;) {
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EWOULDBLOCK && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    ::close(fd);
    if (err == EWOULDBLOCK)
      return reject("conflict.dispatch_engine_busy",
                    "another process runs the dispatch engine on " + store_path +
                        " (gridtrustd, or an offline gridtrust dispatch command; it holds " + path +
                        "): two engines would each count only their own setpoints against a site's limit; submit "
                        "through gridtrustd (--server)");
    return reject("store.lock_failed", "cannot lock " + path + ": " + std::strerror(err));
  }
}

}  // namespace

Result<std::unique_ptr<DispatchRuntime>> DispatchRuntime::open(const DispatchConfig& config,
                                                               pki::CertificateAuthority& ca,
                                                               std::shared_ptr<CommandService> commands,
                                                               std::string actor, const std::string& store_path,
                                                               int wait_ms) {
  GT_TRY_ASSIGN(dispatch::Fleet fleet, dispatch::load_fleet_file(config.registry));
  std::unique_ptr<DispatchRuntime> rt(new DispatchRuntime(config, ca, std::move(commands)));
  GT_TRY_ASSIGN(rt->lock_.fd, take_engine_lock(store_path, wait_ms));  // before the engine reads any state
  dispatch::EngineOptions o;
  o.max_lifetime_s = config.max_lifetime_s;
  o.max_clock_skew_s = config.max_clock_skew_s;
  o.default_duration_s = config.default_duration_s;
  o.split = config.split;
  o.actor = std::move(actor);
  o.decision_log_size = config.decision_log;
  try {
    rt->engine_ = std::make_unique<dispatch::Engine>(std::move(fleet), rt->resolver_, ca.store(), std::move(o),
                                                     &rt->outgoing_);
  } catch (const std::runtime_error& e) {  // the recorded EVSE states could not be read
    return reject("store.read_failed", std::string("dispatch: ") + e.what());
  }
  GT_TRY(rt->apply_recorded_sessions());
  return rt;
}

Status DispatchRuntime::apply_recorded_sessions() {
  GT_TRY_ASSIGN(auto recorded, ca_.store().dispatch_sessions());
  for (const auto& r : recorded) {
    const auto now_in_file = engine_->session_of(r.ev);
    if (!r.session) {  // stopped since the file
      if (now_in_file) (void)engine_->forget_session(r.ev);
      continue;
    }
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(*r.session, ec);
    Status st = Ok{};
    if (ec || !v.is_object()) st = reject("dispatch.bad_registry", "not a JSON object");
    else {
      auto s = dispatch::session_from_json(v.get_object(), "recorded session " + r.ev);
      if (!s.ok()) st = s.error();
      else {
        // Moved since the file: it left its EVSE there. Changed in place (its SoC, say):
        // replaced. Either way the EVSEs keep the states recorded with them (a stop at
        // run time recorded its clearing), which the engine took up at its start.
        if (now_in_file && (now_in_file->station != s->station || now_in_file->evse != s->evse))
          (void)engine_->forget_session(r.ev);
        st = engine_->start_session(std::move(*s));
      }
    }
    if (!st.ok())
      std::fprintf(stderr, "gridtrust: dispatch: recorded session of %s not applied (%s: %s)\n", r.ev.c_str(),
                   st.error().code.c_str(), st.error().message.c_str());
  }
  return Ok{};
}

Status DispatchRuntime::record_session(const std::string& ev, std::int64_t at) {
  std::optional<std::string> text;
  if (auto s = engine_->session_of(ev)) text = boost::json::serialize(dispatch::session_to_json(*s));
  return ca_.store().save_dispatch_session(ev, std::move(text), at);
}

}  // namespace gridtrust::app
