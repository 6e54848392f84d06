#include "cli/commands.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <boost/json.hpp>

#include "cli/args.h"
#include "cli/audit_report.h"
#include "cli/pki_context.h"
#include "cli/record_json.h"
#include "core/time.h"
#include "pki/audit_checkpoint.h"
#include "pki/certificate_builder.h"
#include "pki/csr.h"
#include "pki/revocation_reason.h"

namespace gridtrust::cli {

namespace json = boost::json;
using app::record_json;

// A directory opens as an empty stream; name it unreadable rather than let it pass
// for an empty file.
Status check_readable(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    return reject("usage.unreadable_file", "cannot read " + path + ": is a directory");
  return Ok{};
}

Result<Bytes> read_file(const std::string& path, std::size_t limit) {
  GT_TRY(check_readable(path));
  std::ifstream in(path, std::ios::binary);
  if (!in) return reject("usage.unreadable_file", "cannot read " + path);
  Bytes out;
  char buf[8192];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    out.insert(out.end(), buf, buf + in.gcount());
    // Read one byte past the limit so the caller can tell "too large" from "at limit".
    if (out.size() > limit) break;
  }
  if (in.bad()) return reject("usage.unreadable_file", "cannot read " + path);
  return out;
}

// Commands that change the store (issue, crl) check --out before they act, so that an
// unwritable output path is refused without leaving a certificate or CRL number behind.
Status check_output_path(const std::optional<std::string>& path) {
  if (!path) return Ok{};
  std::error_code ec;
  std::filesystem::path p(*path);
  std::filesystem::path parent = p.has_parent_path() ? p.parent_path() : std::filesystem::path(".");
  if (path->empty() || std::filesystem::is_directory(p, ec) || !std::filesystem::is_directory(parent, ec) ||
      ::access(parent.c_str(), W_OK) != 0)
    return reject("usage.unwritable_file", "cannot write " + *path);
  return Ok{};
}

// Commands without positional arguments refuse stray words instead of ignoring them.
Status no_positionals(const Args& a, const char* command) {
  if (!a.positional.empty())
    return reject("usage.unexpected_argument",
                  std::string(command) + " takes no argument '" + a.positional.front() + "' (options start with --)");
  return Ok{};
}

// Serial numbers on the command line: hexadecimal, optional 0x, any case.
Result<std::string> normalise_serial(const std::string& text) {
  std::string serial = text;
  if (serial.rfind("0x", 0) == 0 || serial.rfind("0X", 0) == 0) serial = serial.substr(2);
  for (auto& c : serial) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (serial.empty() || serial.size() > 40 || !from_hex(serial.size() % 2 ? "0" + serial : serial))
    return reject("usage.bad_serial", "serial must be hexadecimal: '" + text + "'");
  return serial;
}

// Writes to FILE atomically and durably (a new temp file beside it, fsync, rename,
// fsync of the directory) or to stdout. The temp file is created exclusively and
// never through a symlink, so a planted link cannot redirect the write.
Status write_output(const std::optional<std::string>& path, const std::string& text) {
  if (!path) {
    std::cout << text;
    std::cout.flush();
    if (!std::cout) return reject("usage.unwritable_file", "cannot write to standard output");
    return Ok{};
  }
  std::filesystem::path target(*path);
  std::filesystem::path dir = target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  std::string tmp = (dir / ("." + target.filename().string() + ".XXXXXX")).string();
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) return reject("usage.unwritable_file", "cannot write " + *path);
  bool ok = true;
  for (std::size_t done = 0; ok && done < text.size();) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n <= 0) ok = false;
    else done += static_cast<std::size_t>(n);
  }
  ok = ok && ::fchmod(fd, 0644) == 0 && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), path->c_str()) != 0) {
    ::unlink(tmp.c_str());
    return reject("usage.unwritable_file", "cannot write " + *path);
  }
  if (int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Ok{};
}

// renew and rekey, offline and remote: the answer is the API's (app::replacement_json).
Status write_replacement(const Args& a, const json::object& answer) {
  auto member = [&answer](const char* name) -> Result<std::string> {
    if (auto* m = answer.if_contains(name); m && m->is_string()) return std::string(m->as_string());
    return reject("remote.bad_response", std::string("answer has no string member \"") + name + "\"");
  };
  if (a.flag("json")) {
    GT_TRY(write_output(a.value("out"), json::serialize(answer) + "\n"));
  } else {
    GT_TRY_ASSIGN(std::string chain, member("chain_pem"));
    GT_TRY(write_output(a.value("out"), chain));
  }
  // The new certificate is stored and written; what is left to say is that the old
  // one could not be revoked, with that failure's code and exit status.
  const json::value* failure = answer.if_contains("revoke_old_error");
  if (!failure) return Ok{};
  const json::object* f = failure->if_object();
  const json::value* code = f ? f->if_contains("code") : nullptr;
  const json::value* message = f ? f->if_contains("message") : nullptr;
  if (!code || !code->is_string() || !message || !message->is_string())
    return reject("remote.bad_response", "answer has a malformed \"revoke_old_error\"");
  GT_TRY_ASSIGN(std::string serial, member("serial"));
  GT_TRY_ASSIGN(std::string replaces, member("replaces"));
  return reject(std::string(code->as_string()),
                "new certificate " + serial + " is stored, but revoking the replaced certificate " + replaces +
                    " failed; it stays as it was (revoke it with: gridtrust revoke " + replaces +
                    " --reason superseded): " + std::string(message->as_string()));
}

namespace {


std::string actor() {
  const char* user = std::getenv("USER");
  return std::string("cli:") + (user ? user : "unknown");
}

Result<std::string> data_dir(const Args& a) {
  std::string d = data_dir_or_default(a.value("data-dir").value_or(""));
  if (d.empty()) return reject("usage.missing_option", "--data-dir is required (or set GRIDTRUST_DATA_DIR)");
  return d;
}

Status cmd_issue(const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(Args a, parse_args(words, {"data-dir", "profile", "csr", "subject", "out", "validity-days", "key-type"},
                                   {"generate-key", "json"}));
  GT_TRY_ASSIGN(std::string dir, data_dir(a));
  GT_TRY(no_positionals(a, "issue"));
  GT_TRY_ASSIGN(std::string profile, a.required("profile"));
  pki::IssueOptions opt;
  opt.actor = actor();
  if (auto v = a.value("validity-days")) {
    try {
      std::size_t used = 0;
      opt.validity_days = std::stoi(*v, &used);
      if (used != v->size()) throw std::invalid_argument(*v);
    } catch (const std::exception&) {
      return reject("usage.bad_value", "--validity-days must be a whole number of days");
    }
  }
  bool generate = a.flag("generate-key");
  if (generate == a.value("csr").has_value())
    return reject("usage.bad_combination", "give either --csr FILE or --subject S --generate-key");
  if (generate && !a.value("subject")) return reject("usage.missing_option", "--generate-key needs --subject");
  if (auto type = a.value("key-type")) {
    if (!generate) return reject("usage.bad_combination", "--key-type goes with --generate-key (a CSR brings its own key)");
    opt.key_algorithm = hsm::key_algorithm_from_name(*type);
    if (!opt.key_algorithm)
      return reject("usage.bad_value", "--key-type must be one of P-256, P-384, P-521, Ed25519, Ed448");
  }
  GT_TRY(check_output_path(a.value("out")));
  Bytes csr;
  if (!generate) {
    GT_TRY_ASSIGN(csr, read_file(*a.value("csr"), pki::kMaxCsrBytes));
  }
  GT_TRY_ASSIGN(auto ctx, app::open_pki(dir));
  GT_TRY_ASSIGN(pki::Issued issued, generate ? ctx->ca->issue_with_hsm_key(profile, *a.value("subject"), opt)
                                             : ctx->ca->issue_from_csr(profile, csr, opt));
  if (a.flag("json")) {
    json::object o = record_json(issued.record);
    o["chain_pem"] = issued.chain_pem();
    return write_output(a.value("out"), json::serialize(o) + "\n");
  }
  return write_output(a.value("out"), issued.chain_pem());
}

// Issues one certificate per CSR listed in FILE (one path a line). Each certificate is
// printed only after it is durably stored, so an interrupted run never printed a
// certificate the store does not have.
Status cmd_issue_bulk(const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(Args a, parse_args(words, {"data-dir", "profile", "csr-list"}, {}));
  GT_TRY_ASSIGN(std::string dir, data_dir(a));
  GT_TRY(no_positionals(a, "issue-bulk"));
  GT_TRY_ASSIGN(std::string profile, a.required("profile"));
  GT_TRY_ASSIGN(std::string list, a.required("csr-list"));
  GT_TRY(check_readable(list));
  std::ifstream in(list);
  if (!in) return reject("usage.unreadable_file", "cannot read " + list);
  GT_TRY_ASSIGN(auto ctx, app::open_pki(dir, 32));
  pki::IssueOptions opt;
  opt.actor = actor();
  std::string path;
  while (std::getline(in, path)) {
    if (path.empty()) continue;
    GT_TRY_ASSIGN(Bytes csr, read_file(path, pki::kMaxCsrBytes));
    GT_TRY_ASSIGN(pki::Issued issued, ctx->ca->issue_from_csr(profile, csr, opt));
    auto cert = pki::certificate_from_der(issued.record.der);
    std::cout << pki::certificate_pem(cert->get());
    std::cout.flush();
  }
  return Ok{};
}

Status cmd_list(const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(Args a, parse_args(words, {"data-dir", "profile", "status", "expiring-before"}, {"json"}));
  GT_TRY_ASSIGN(std::string dir, data_dir(a));
  GT_TRY(no_positionals(a, "list"));
  store::CertificateFilter f;
  f.profile = a.value("profile");
  f.status = a.value("status");
  if (f.status && *f.status != "valid" && *f.status != "revoked")
    return reject("usage.bad_value", "--status must be valid or revoked");
  if (auto v = a.value("expiring-before")) {
    try {
      std::size_t used = 0;
      f.expiring_before = std::stoll(*v, &used);
      if (used != v->size()) throw std::invalid_argument(*v);
    } catch (const std::exception&) {
      return reject("usage.bad_value", "--expiring-before takes a Unix time in seconds");
    }
  }
  GT_TRY_ASSIGN(auto ctx, app::open_pki(dir));
  GT_TRY_ASSIGN(auto rows, ctx->store->list(f));
  if (a.flag("json")) {
    json::array arr;
    for (auto& r : rows) arr.push_back(record_json(r));
    std::cout << json::serialize(arr) << "\n";
  } else {
    for (auto& r : rows) std::cout << app::record_line(record_json(r));
  }
  return Ok{};
}

Status cmd_show(const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(Args a, parse_args(words, {"data-dir"}, {"json", "pem"}));
  GT_TRY_ASSIGN(std::string dir, data_dir(a));
  if (a.positional.size() != 1) return reject("usage.missing_argument", "show takes one SERIAL");
  GT_TRY_ASSIGN(std::string serial, normalise_serial(a.positional[0]));
  GT_TRY_ASSIGN(auto ctx, app::open_pki(dir));
  GT_TRY_ASSIGN(auto rows, ctx->store->find_by_serial(serial));
  if (rows.empty()) return reject("notfound.certificate", "no certificate with serial " + a.positional[0]);
  for (auto& r : rows) {
    auto cert = pki::certificate_from_der(r.der);
    if (a.flag("json")) {
      json::object o = record_json(r);
      if (cert.ok()) o["pem"] = pki::certificate_pem(cert->get());
      std::cout << json::serialize(o) << "\n";
    } else if (a.flag("pem")) {
      if (cert.ok()) std::cout << pki::certificate_pem(cert->get());
    } else {
      std::cout << app::record_text(record_json(r));
    }
  }
  return Ok{};
}

Status cmd_revoke(const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(Args a, parse_args(words, {"data-dir", "reason"}, {"json"}));
  GT_TRY_ASSIGN(std::string dir, data_dir(a));
  if (a.positional.size() != 1) return reject("usage.missing_argument", "revoke takes one SERIAL");
  std::string reason = a.value("reason").value_or("unspecified");
  GT_TRY_ASSIGN(auto ctx, app::open_pki(dir));
  GT_TRY_ASSIGN(auto rec, ctx->ca->revoke(a.positional[0], reason, actor()));
  if (a.flag("json")) std::cout << json::serialize(record_json(rec)) << "\n";
  else std::cout << "revoked " << rec.serial << " (" << reason << ")\n";
  return Ok{};
}

Status cmd_renew(const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(Args a, parse_args(words, {"data-dir", "out"}, {"revoke-old", "json"}));
  GT_TRY_ASSIGN(std::string dir, data_dir(a));
  if (a.positional.size() != 1) return reject("usage.missing_argument", "renew takes one SERIAL");
  GT_TRY_ASSIGN(std::string serial, normalise_serial(a.positional[0]));
  GT_TRY(check_output_path(a.value("out")));
  pki::ReplaceOptions opt;
  opt.actor = actor();
  opt.revoke_old = a.flag("revoke-old");
  GT_TRY_ASSIGN(auto ctx, app::open_pki(dir));
  GT_TRY_ASSIGN(pki::Replacement renewed, ctx->ca->renew(serial, opt));
  return write_replacement(a, app::replacement_json(renewed));
}

Status cmd_rekey(const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(Args a, parse_args(words, {"data-dir", "csr", "out"}, {"generate-key", "revoke-old", "json"}));
  GT_TRY_ASSIGN(std::string dir, data_dir(a));
  if (a.positional.size() != 1) return reject("usage.missing_argument", "rekey takes one SERIAL");
  GT_TRY_ASSIGN(std::string serial, normalise_serial(a.positional[0]));
  bool generate = a.flag("generate-key");
  if (generate == a.value("csr").has_value())
    return reject("usage.bad_combination", "rekey needs either --csr FILE or --generate-key");
  GT_TRY(check_output_path(a.value("out")));
  Bytes csr;
  if (!generate) {
    GT_TRY_ASSIGN(csr, read_file(*a.value("csr"), pki::kMaxCsrBytes));
  }
  pki::ReplaceOptions opt;
  opt.actor = actor();
  opt.revoke_old = a.flag("revoke-old");
  GT_TRY_ASSIGN(auto ctx, app::open_pki(dir));
  GT_TRY_ASSIGN(pki::Replacement rekeyed, generate ? ctx->ca->rekey_with_hsm_key(serial, opt)
                                                   : ctx->ca->rekey_from_csr(serial, csr, opt));
  return write_replacement(a, app::replacement_json(rekeyed));
}

Status cmd_crl(const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(Args a, parse_args(words, {"data-dir", "issuer", "out"}, {}));
  GT_TRY_ASSIGN(std::string dir, data_dir(a));
  GT_TRY(no_positionals(a, "crl"));
  GT_TRY(check_output_path(a.value("out")));
  GT_TRY_ASSIGN(std::string issuer, a.required("issuer"));
  GT_TRY_ASSIGN(auto ctx, app::open_pki(dir));
  GT_TRY_ASSIGN(std::string pem, ctx->ca->crl_pem(issuer, actor()));
  return write_output(a.value("out"), pem);
}

Status cmd_chain(const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(Args a, parse_args(words, {"data-dir", "profile", "out"}, {}));
  GT_TRY_ASSIGN(std::string dir, data_dir(a));
  GT_TRY(no_positionals(a, "chain"));
  GT_TRY_ASSIGN(std::string profile, a.required("profile"));
  GT_TRY_ASSIGN(auto ctx, app::open_pki(dir));
  GT_TRY_ASSIGN(auto chain, ctx->ca->chain(profile));
  std::string out;
  for (auto& der : chain) {
    GT_TRY_ASSIGN(auto cert, pki::certificate_from_der(der));
    out += pki::certificate_pem(cert.get());
  }
  return write_output(a.value("out"), out);
}

Status cmd_audit(const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(Args a, parse_args(words, {"data-dir"}, {"json"}));
  if (a.positional.size() != 1 || (a.positional[0] != "verify" && a.positional[0] != "checkpoint"))
    return reject("usage.unknown_command", "audit takes the subcommand 'verify' or 'checkpoint'");
  GT_TRY_ASSIGN(std::string dir, data_dir(a));
  if (a.positional[0] == "checkpoint") {
    GT_TRY_ASSIGN(auto ctx, app::open_pki(dir));
    GT_TRY_ASSIGN(auto c, pki::write_audit_checkpoint(*ctx->token, *ctx->store));
    std::cout << "checkpoint of audit entry " << c.entry_id << " (" << c.head_hash << ") signed by key "
              << to_hex(c.key_id) << "\n";
    return Ok{};
  }
  GT_TRY_ASSIGN(auto config, app::load_app_config(dir));
  GT_TRY_ASSIGN(auto st, store::SqliteStore::open(config.store_path));
  // Checkpoint signatures need the token; the chain alone needs only the store, so
  // the token is opened only for a chain that holds.
  GT_TRY_ASSIGN(auto v, app::verify_audit(*st, [&dir]() -> Result<std::shared_ptr<hsm::Token>> {
    GT_TRY_ASSIGN(auto ctx, app::open_pki(dir));
    return ctx->token;
  }));
  if (a.flag("json")) std::cout << json::serialize(app::audit_report_json(v)) << "\n";
  if (!v.chain.ok)
    return reject("audit.chain_broken", "audit entry " + std::to_string(*v.chain.first_bad_id) + ": " + v.chain.problem);
  const pki::CheckpointReport& cps = v.checkpoints;
  if (!cps.ok)
    return reject("audit.checkpoint_invalid", "audit entry " + std::to_string(*cps.first_bad_entry) + ": " + cps.problem);
  if (!v.note.empty()) std::cerr << "note: " << v.note << "\n";
  if (!a.flag("json"))
    std::cout << "audit chain ok: " << v.chain.entries << " entries, head " << v.chain.head_hash << "; "
              << cps.checked << " checkpoints " << (cps.signatures_checked ? "signed and linked" : "linked") << "\n";
  return Ok{};
}

Status cmd_keys(const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(Args a, parse_args(words, {"data-dir"}, {"json"}));
  GT_TRY_ASSIGN(std::string dir, data_dir(a));
  GT_TRY(no_positionals(a, "keys"));
  GT_TRY_ASSIGN(auto ctx, app::open_pki(dir));
  GT_TRY_ASSIGN(auto keys, ctx->token->list_private_keys());
  json::array arr;
  for (auto& k : keys) {
    if (a.flag("json")) {
      json::object o;
      o["label"] = k.label;
      o["id"] = to_hex(k.id);
      o["sensitive"] = k.sensitive;
      o["extractable"] = k.extractable;
      o["always_sensitive"] = k.always_sensitive;
      o["never_extractable"] = k.never_extractable;
      arr.push_back(o);
    } else {
      std::cout << k.label << "  sensitive=" << k.sensitive << " extractable=" << k.extractable << "\n";
    }
  }
  if (a.flag("json")) std::cout << json::serialize(arr) << "\n";
  return Ok{};
}

}  // namespace

std::string data_dir_or_default(const std::string& from_args) {
  if (!from_args.empty()) return from_args;
  const char* env = std::getenv("GRIDTRUST_DATA_DIR");
  return env ? env : "";
}

std::string usage_text() {
  return "usage: gridtrust COMMAND [options]   (every command takes --data-dir DIR, default $GRIDTRUST_DATA_DIR)\n"
         "  init --data-dir DIR [--profiles FILE]      create token, CA hierarchy, store and gridtrust.yaml in empty DIR\n"
         "  issue --profile NAME --csr FILE [--out FILE] [--validity-days N] [--json]\n"
         "  issue --profile NAME --subject \"CN=...,O=...\" --generate-key [--key-type P-384]   (HSM-held key)\n"
         "  issue-bulk --profile NAME --csr-list FILE  one CSR path a line; prints each certificate once stored\n"
         "  list [--profile P] [--status valid|revoked] [--expiring-before UNIX] [--json]\n"
         "  show SERIAL [--json|--pem]\n"
         "  revoke SERIAL --reason REASON              RFC 5280 reason name, e.g. keyCompromise\n"
         "  renew SERIAL [--revoke-old] [--out FILE] [--json]\n"
         "  rekey SERIAL (--csr FILE | --generate-key) [--revoke-old] [--out FILE] [--json]\n"
         "                                             a new certificate for the same subject and profile: renew keeps\n"
         "                                             the key, rekey takes a new one; --revoke-old: old one superseded\n"
         "  crl --issuer PROFILE [--out FILE]\n"
         "  chain --profile NAME [--out FILE]          issuing chain including the root\n"
         "  keys [--json]                              private keys in the token and their flags\n"
         "  audit verify [--json]                      hash chain and signed checkpoints\n"
         "  audit checkpoint                           sign the chain head with the token's audit-checkpoint key\n"
         "  sign --action A --station S [--x5c] [--lifetime SEC] [--signer SERIAL] FILE.json\n"
         "                                             sign an OCPP request payload (docs/signed-commands.md)\n"
         "  sign-batch [--x5c] [--lifetime SEC] FILE.json   FILE: [{\"action\",\"station\",\"message\"}...], one signature\n"
         "  verify [--station S] [--action A] [--max-lifetime SEC] FILE.json   records the sequence number\n"
         "  verify-batch [--station S] FILE.json       a whole batch, one signature check\n"
         "  ocpp sign-certificate FILE.json            SignCertificateRequest payload -> CertificateSignedRequest\n"
         "  ocpp certificate-status FILE.json          GetCertificateStatusRequest -> GetCertificateStatusResponse\n"
         "  ocpp install-certificate PROFILE --type T  InstallCertificateRequest for a root (T: V2GRootCertificate, ...)\n"
         "  ocpp certificate-hash SERIAL               DeleteCertificateRequest (certificateHashData) of a certificate\n"
         "  ocpp trigger MESSAGE                       TriggerMessageRequest, e.g. SignChargingStationCertificate\n"
         "                                             every ocpp command: [--ocpp-version 2.0.1|2.1] [--out FILE] [--json];\n"
         "                                             install-certificate, certificate-hash: [--hash SHA256|SHA384|SHA512]\n"
         "  dispatch submit|submit-batch|target FILE.json   a signed setpoint, batch or fleet target (docs/dispatch.md)\n"
         "  dispatch status --site S|--station S       engine state (remote only: --server)\n"
         "  dispatch decisions [--limit N]             the decision log (remote only: --server)\n"
         "  fleet simulate --evs N --hours H [--signal FILE.csv] [--step SEC] [--policy proportional|least-degradation]\n"
         "                 [--svg FILE] [--json]       the engine on a simulated clock against a regulation signal\n"
         "  rotation plan [--json] [--svg FILE]        rotation interval per role from the risk model (rotation.roles\n"
         "                                             in gridtrust.yaml): table or JSON; --svg: cost curves and bands\n"
         "Remote: gridtrust --server https://HOST:PORT (or $GRIDTRUST_SERVER) issue|list|show|revoke|renew|rekey|crl|chain|ocpp|sign|sign-batch|verify|verify-batch ...\n"
         "  runs the command through gridtrustd's API as init's admin certificate (key in --data-dir's token)\n"
         "Errors: one line 'error: <code>: <message>' on stderr; codes in docs/error-codes.md.\n";
}

Status run_command(const std::string& command, const std::vector<std::string>& words) {
  if (command == "init") return cmd_init(words);
  if (command == "issue") return cmd_issue(words);
  if (command == "issue-bulk") return cmd_issue_bulk(words);
  if (command == "list") return cmd_list(words);
  if (command == "show") return cmd_show(words);
  if (command == "revoke") return cmd_revoke(words);
  if (command == "renew") return cmd_renew(words);
  if (command == "rekey") return cmd_rekey(words);
  if (command == "crl") return cmd_crl(words);
  if (command == "chain") return cmd_chain(words);
  if (command == "keys") return cmd_keys(words);
  if (command == "audit") return cmd_audit(words);
  if (command == "sign") return cmd_sign(words);
  if (command == "sign-batch") return cmd_sign_batch(words);
  if (command == "verify") return cmd_verify(words);
  if (command == "verify-batch") return cmd_verify_batch(words);
  if (command == "ocpp") return cmd_ocpp(words);
  if (command == "dispatch") return cmd_dispatch(words);
  if (command == "fleet") return cmd_fleet(words);
  if (command == "rotation" && !words.empty() && words[0] == "status") return cmd_rotation_status(words);
  if (command == "rotation") return cmd_rotation(words);
  return reject("usage.unknown_command", "unknown command '" + command + "' (see gridtrust --help)");
}

}  // namespace gridtrust::cli
