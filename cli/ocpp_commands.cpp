// gridtrust ocpp ...: OCPP 2.0.1/2.1 certificate management (protocol/ocpp_certificates.h),
// offline on the data directory (as admin: any organisation) or, with --server,
// through gridtrustd's /v1/ocpp routes. Both print the same: the OCPP payload a CSMS
// forwards, or with --json the whole answer of the API.
#include <iostream>

#include <boost/json.hpp>

#include "cli/commands.h"
#include "cli/pki_context.h"
#include "cli/remote_client.h"
#include "protocol/ocpp_certificates.h"

namespace gridtrust::cli {
namespace json = boost::json;
namespace ocpp = protocol::ocpp;

namespace {

constexpr std::size_t kMaxPayloadBytes = 1 << 20;

const char* kSubcommands =
    "ocpp takes sign-certificate, certificate-status, install-certificate, certificate-hash or trigger";

struct Call {
  std::string sub;
  Args args;
  ocpp::Version version = ocpp::Version::v2_0_1;
  protocol::HashAlgorithm hash = protocol::HashAlgorithm::sha256;
};

Result<Call> parse_call(const std::vector<std::string>& words) {
  if (words.empty()) return reject("usage.unknown_command", kSubcommands);
  Call c;
  c.sub = words.front();
  if (c.sub != "sign-certificate" && c.sub != "certificate-status" && c.sub != "install-certificate" &&
      c.sub != "certificate-hash" && c.sub != "trigger")
    return reject("usage.unknown_command", std::string(kSubcommands) + ", not '" + c.sub + "'");
  std::vector<std::string> rest(words.begin() + 1, words.end());
  std::set<std::string> values{"data-dir", "ocpp-version", "out"};
  if (c.sub == "install-certificate") values.insert("type");
  if (c.sub == "install-certificate" || c.sub == "certificate-hash") values.insert("hash");
  GT_TRY_ASSIGN(c.args, parse_args(rest, values, {"json"}));
  if (c.args.positional.size() != 1) {
    const char* what = c.sub == "install-certificate" ? "one PROFILE"
                       : c.sub == "certificate-hash"  ? "one SERIAL"
                       : c.sub == "trigger"           ? "one requestedMessage"
                                                      : "one FILE.json";
    return reject("usage.missing_argument", "ocpp " + c.sub + " takes " + what);
  }
  if (auto v = c.args.value("ocpp-version")) {
    GT_TRY_ASSIGN(c.version, ocpp::parse_version(*v));
  }
  if (auto h = c.args.value("hash")) {
    GT_TRY_ASSIGN(c.hash, ocpp::parse_hash_algorithm(*h));
  }
  if (c.sub == "install-certificate") GT_TRY(c.args.required("type"));
  GT_TRY(check_output_path(c.args.value("out")));
  return c;
}

// The payload file: strict JSON (duplicate names refused), as the API reads it.
Result<json::value> read_payload(const std::string& path) {
  GT_TRY_ASSIGN(Bytes bytes, read_file(path, kMaxPayloadBytes));
  return ocpp::parse_payload(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

Result<std::string> dir_of(const Args& a) {
  std::string d = data_dir_or_default(a.value("data-dir").value_or(""));
  if (d.empty()) return reject("usage.missing_option", "--data-dir is required (or set GRIDTRUST_DATA_DIR)");
  return d;
}

std::string actor() {
  const char* user = std::getenv("USER");
  return std::string("cli:") + (user ? user : "unknown");
}

json::object wrap(ocpp::Version v, const char* action, json::object response) {
  return json::object{{"ocppVersion", ocpp::version_text(v)}, {"action", action}, {"response", std::move(response)}};
}

// The answer the API would give, computed on the data directory.
Result<json::object> offline_answer(const Call& c) {
  const std::string& arg = c.args.positional.front();
  if (c.sub == "trigger") return ocpp::trigger_message(c.version, arg);
  json::value payload;
  if (c.sub == "sign-certificate" || c.sub == "certificate-status") {
    GT_TRY_ASSIGN(payload, read_payload(arg));
  }
  std::string serial;
  if (c.sub == "certificate-hash") {
    GT_TRY_ASSIGN(serial, normalise_serial(arg));
  }
  GT_TRY_ASSIGN(std::string dir, dir_of(c.args));
  GT_TRY_ASSIGN(auto ctx, app::open_pki(dir));
  if (c.sub == "sign-certificate") {
    // Offline is the PKI's own administrator: any organisation.
    GT_TRY_ASSIGN(ocpp::CertificateSigned s, ocpp::sign_certificate(*ctx->ca, c.version, payload, {actor(), {}}));
    json::object out = wrap(c.version, "CertificateSigned", std::move(s.payload));
    out["serial"] = s.record.serial;
    out["profile"] = s.record.profile;
    return out;
  }
  if (c.sub == "certificate-status") {
    pki::OcspResponderConfig config;
    config.log = [](const Rejection&) {};  // the answer's statusInfo says it
    GT_TRY_ASSIGN(auto responder, pki::OcspResponder::create(*ctx->ca, std::move(config), now_seconds()));
    GT_TRY_ASSIGN(json::object response, ocpp::certificate_status(*responder, c.version, payload, now_seconds()));
    return wrap(c.version, "GetCertificateStatus", std::move(response));
  }
  if (c.sub == "install-certificate") return ocpp::install_certificate(*ctx->ca, c.version, arg, *c.args.value("type"), c.hash);
  return ocpp::certificate_hash(*ctx->ca, c.version, serial, c.hash);
}

const char* hash_text(protocol::HashAlgorithm h) {
  switch (h) {
    case protocol::HashAlgorithm::sha256: return "SHA256";
    case protocol::HashAlgorithm::sha384: return "SHA384";
    case protocol::HashAlgorithm::sha512: return "SHA512";
  }
  return "SHA256";
}

Result<json::object> remote_answer(const ServerUrl& server, const Call& c) {
  const std::string& arg = c.args.positional.front();
  std::string query = std::string("?ocppVersion=") + ocpp::version_text(c.version);
  std::string target;
  std::optional<json::object> body;
  if (c.sub == "sign-certificate" || c.sub == "certificate-status") {
    GT_TRY_ASSIGN(json::value payload, read_payload(arg));
    target = "/v1/ocpp/" + c.sub;
    body = json::object{{"ocppVersion", ocpp::version_text(c.version)}, {"request", std::move(payload)}};
  } else if (c.sub == "install-certificate") {
    target = "/v1/ocpp/install-certificate/" + percent_encode(arg) + query +
             "&certificateType=" + percent_encode(*c.args.value("type")) + "&hashAlgorithm=" + hash_text(c.hash);
  } else if (c.sub == "certificate-hash") {
    GT_TRY_ASSIGN(std::string serial, normalise_serial(arg));
    target = "/v1/ocpp/certificate-hash/" + serial + query + "&hashAlgorithm=" + hash_text(c.hash);
  } else {
    target = "/v1/ocpp/trigger/" + percent_encode(arg) + query;
  }
  GT_TRY_ASSIGN(std::string dir, dir_of(c.args));
  GT_TRY_ASSIGN(auto client, RemoteClient::open(dir, server));
  GT_TRY_ASSIGN(json::value v, client->call(target, body));
  if (!v.is_object()) return reject("remote.bad_response", "answer is not a JSON object");
  return std::move(v.as_object());
}

// The payload ("response" of sign-certificate and certificate-status, "request" of the
// builders), or with --json the whole answer.
Status write_answer(const Call& c, const json::object& answer) {
  if (c.args.flag("json")) return write_output(c.args.value("out"), json::serialize(answer) + "\n");
  const char* member = c.sub == "sign-certificate" || c.sub == "certificate-status" ? "response" : "request";
  const json::value* payload = answer.if_contains(member);
  if (!payload || !payload->is_object())
    return reject("remote.bad_response", std::string("answer has no object member \"") + member + "\"");
  return write_output(c.args.value("out"), json::serialize(*payload) + "\n");
}

}  // namespace

Status cmd_ocpp(const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(Call c, parse_call(words));
  GT_TRY_ASSIGN(json::object answer, offline_answer(c));
  return write_answer(c, answer);
}

Status remote_ocpp(const ServerUrl& server, const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(Call c, parse_call(words));
  GT_TRY_ASSIGN(json::object answer, remote_answer(server, c));
  return write_answer(c, answer);
}

}  // namespace gridtrust::cli
