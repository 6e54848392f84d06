#pragma once
// The dispatch engine (dispatch/engine.h) as gridtrust runs it: the registry file of
// the `dispatch:` section, the PKI's own signer trust (aggregator-signer certificates
// in the store), and the commands it emits signed by the same HSM-held
// aggregator signer and sequence numbers as /v1/commands (app::CommandService).
// gridtrustd holds one for its lifetime; `gridtrust dispatch` offline one per call.
#include <memory>
#include <string>

#include "cli/command_signing.h"
#include "cli/dispatch_config.h"
#include "dispatch/engine.h"
#include "protocol/signer_trust.h"

namespace gridtrust::app {

// Emitted commands through CommandService: one item is signed alone, several as one
// batch (one HSM signature for all, each entry verifiable by its own station).
class CommandOutgoingSigner final : public dispatch::OutgoingSigner {
 public:
  CommandOutgoingSigner(std::shared_ptr<CommandService> service, std::int64_t lifetime_s)
      : service_(std::move(service)), lifetime_s_(lifetime_s) {}
  Result<std::vector<boost::json::object>> sign(std::vector<protocol::BatchItem> items, std::int64_t now) override;

 private:
  std::shared_ptr<CommandService> service_;
  std::int64_t lifetime_s_;
};

class DispatchRuntime {
 public:
  // Loads the registry (dispatch.bad_registry & co., usage.unreadable_file naming the
  // file). Replay state is the store's: nothing to load.
  // One engine per database: each counts only the setpoints it decided itself against
  // a site's limit, so a second one (gridtrustd and an offline `gridtrust dispatch` on
  // the same store) could overload a site. The runtime holds an exclusive lock on
  // `<store_path>-dispatch.lock` for its lifetime; while another process holds it, open
  // waits up to `wait_ms` (gridtrustd: an offline command may hold it for a moment as
  // the daemon starts) and then fails with conflict.dispatch_engine_busy
  // (store.lock_failed if the file cannot be opened or locked).
  static Result<std::unique_ptr<DispatchRuntime>> open(const DispatchConfig& config, pki::CertificateAuthority& ca,
                                                       std::shared_ptr<CommandService> commands, std::string actor,
                                                       const std::string& store_path, int wait_ms = 0);
  DispatchRuntime(const DispatchRuntime&) = delete;  // the engine holds references to its parts
  DispatchRuntime& operator=(const DispatchRuntime&) = delete;

  dispatch::Engine& engine() { return *engine_; }
  // After a session start, stop or SoC update through the API: the EV's session as the
  // engine now has it (or its absence) made durable, so that a restart (and the offline
  // CLI) starts from it rather than from the registry file alone.
  Status record_session(const std::string& ev, std::int64_t at);
  const DispatchConfig& config() const { return config_; }

 private:
  DispatchRuntime(DispatchConfig config, pki::CertificateAuthority& ca, std::shared_ptr<CommandService> commands);
  // The recorded sessions over the registry's, oldest change first; one that no longer
  // fits the registry (station or EVSE gone) is skipped with a warning on stderr.
  Status apply_recorded_sessions();

  struct EngineLock {  // released last, once the engine is gone
    int fd = -1;
    EngineLock() = default;
    EngineLock(const EngineLock&) = delete;
    EngineLock& operator=(const EngineLock&) = delete;
    ~EngineLock();
  };
  EngineLock lock_;
  DispatchConfig config_;
  protocol::PkiSignerResolver resolver_;
  CommandOutgoingSigner outgoing_;
  std::unique_ptr<dispatch::Engine> engine_;
  pki::CertificateAuthority& ca_;
};

}  // namespace gridtrust::app
