// gridtrust init: an embedded PKI in an empty directory.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/pki_context.h"
#include "core/random.h"
#include "hsm/token.h"
#include "pki/profile_loader.h"

namespace gridtrust::cli {
namespace fs = std::filesystem;

namespace {

// Creates a new file readable by the owner only; refuses to overwrite.
Status write_private(const fs::path& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return reject("init.write_failed", "cannot create " + path.string());
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return reject("init.write_failed", "cannot write " + path.string());
  return Ok{};
}

// gridtrustd's own TLS certificate, a first admin client certificate and the OCSP
// signer of Sub-CA 2, all with keys generated in the token. Only the public chains of
// the first two go to disk.
Result<app::DaemonIdentity> issue_daemon_identity(pki::CertificateAuthority& ca, const fs::path& dir,
                                                  const std::string& actor) {
  const std::string org = ca.profiles()->organisation;
  pki::IssueOptions opt;
  opt.actor = actor;
  GT_TRY_ASSIGN(pki::Issued server, ca.issue_with_hsm_key("csms-server", "CN=localhost,O=" + org, opt));
  GT_TRY_ASSIGN(pki::Issued admin, ca.issue_with_hsm_key("admin", "CN=admin,O=" + org + ",OU=admin", opt));
  // RFC 6960 4.2.2.2: OCSP answers for Sub-CA 2's certificates are signed by a
  // delegated signer, so that the CA key is not used per request.
  GT_TRY(ca.issue_with_hsm_key("ocsp-signer", "CN=gridtrust OCSP cpo-sub2,O=" + org, opt));
  // The aggregator's command signer (dispatch authority) for signed OCPP commands.
  GT_TRY(ca.issue_with_hsm_key("aggregator-signer", "CN=" + org + " dispatch,O=" + org, opt));
  GT_TRY(write_private(dir / "server-chain.pem", server.chain_pem()));
  GT_TRY(write_private(dir / "admin-chain.pem", admin.chain_pem()));
  return app::DaemonIdentity{server.record.key_label.value_or(""), admin.record.key_label.value_or("")};
}

}  // namespace

Status cmd_init(const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(Args a, parse_args(words, {"data-dir", "profiles", "module"}, {}));
  if (!a.positional.empty())
    return reject("usage.unexpected_argument", "init takes no argument '" + a.positional.front() + "' (options start with --)");
  std::string dir_arg = data_dir_or_default(a.value("data-dir").value_or(""));
  if (dir_arg.empty()) return reject("usage.missing_option", "--data-dir is required (or set GRIDTRUST_DATA_DIR)");
  std::error_code ec;
  fs::path dir = fs::absolute(dir_arg, ec);
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec)) return reject("init.not_a_directory", dir.string() + " is not a directory");
    if (!fs::is_empty(dir, ec)) return reject("init.dir_not_empty", dir.string() + " is not empty; init needs an empty directory");
  } else if (!fs::create_directories(dir, ec)) {
    return reject("init.write_failed", "cannot create " + dir.string());
  }
  fs::permissions(dir, fs::perms::owner_all, ec);
  std::string profiles_src = a.value("profiles").value_or(GRIDTRUST_DEFAULT_PROFILES);
  std::string module = a.value("module").value_or(GRIDTRUST_DEFAULT_MODULE);
  // Validate the profiles before anything is created.
  GT_TRY(pki::load_profiles(profiles_src));

  fs::create_directories(dir / "tokens", ec);
  fs::create_directories(dir / "secrets", ec);
  fs::permissions(dir / "secrets", fs::perms::owner_all, ec);
  GT_TRY(write_private(dir / "softhsm2.conf", "# SoftHSM2 configuration of this data directory's embedded token.\n"
                                              "directories.tokendir = " + (dir / "tokens").string() + "\n"
                                              "objectstore.backend = file\n"
                                              "log.level = ERROR\n"
                                              "slots.removable = false\n"));
  SecureString so_pin(to_hex(random_bytes(16)));  // zeroed when it goes out of scope
  SecureString user_pin(to_hex(random_bytes(16)));
  // The SO PIN can re-initialise the token (destroying every key) or reset the user
  // PIN; it is used once here and not kept next to the user PIN.
  GT_TRY(write_private(dir / "secrets" / "user.pin", user_pin.reveal() + "\n"));
  fs::copy_file(profiles_src, dir / "profiles.yaml", ec);
  if (ec) return reject("init.write_failed", "cannot copy profiles: " + ec.message());
  GT_TRY(write_private(dir / "gridtrust.yaml", app::default_config_yaml(module)));

  GT_TRY_ASSIGN(auto config, app::load_app_config(dir.string()));
  app::use_softhsm2_conf(config);
  GT_TRY(hsm::init_token(config.module_path, "gridtrust", so_pin, user_pin));
  GT_TRY_ASSIGN(auto ctx, app::open_pki(dir.string()));
  const char* user = std::getenv("USER");
  const std::string actor = std::string("cli:") + (user ? user : "unknown");
  GT_TRY(ctx->ca->create_hierarchy(actor));
  GT_TRY_ASSIGN(app::DaemonIdentity identity, issue_daemon_identity(*ctx->ca, dir, actor));
  // The labels are known only now: replace the configuration written above.
  GT_TRY(write_private(dir / "gridtrust.yaml.new", app::default_config_yaml(module, identity)));
  fs::rename(dir / "gridtrust.yaml.new", dir / "gridtrust.yaml", ec);
  if (ec) return reject("init.write_failed", "cannot replace gridtrust.yaml: " + ec.message());
  std::cout << "initialised " << dir.string() << ": token 'gridtrust' with "
            << ctx->ca->profiles()->cas_in_order().size() << " CAs, store " << config.store_path
            << "; gridtrustd TLS certificate in server-chain.pem, admin certificate in admin-chain.pem\n";
  return Ok{};
}

}  // namespace gridtrust::cli
