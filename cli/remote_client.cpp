#include "cli/remote_client.h"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <chrono>
#include <cctype>
#include <filesystem>
#include <iostream>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/pki_context.h"
#include "cli/record_json.h"
#include "core/openssl_error.h"
#include "core/time.h"
#include "hsm/evp_bridge.h"
#include "hsm/hsm_signer.h"
#include "pki/certificate_builder.h"
#include "pki/csr.h"

namespace gridtrust::cli {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
namespace ssl = asio::ssl;

namespace {

// Bounds one whole exchange: connect, handshake (one HSM signature), request, answer.
constexpr auto kExchangeTimeout = std::chrono::seconds(30);
// A CRL or a long certificate list is big; an answer beyond this is not gridtrustd's.
constexpr std::uint64_t kMaxAnswerBytes = 64ull * 1024 * 1024;

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

std::string host_header(const ServerUrl& s) {
  return (s.host.find(':') != std::string::npos ? "[" + s.host + "]" : s.host) + ":" + s.port;
}

// A path segment or query value: unreserved characters as they are, the rest %XX.
std::string percent_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

struct Exchange {
  http::request<http::string_body> request;
  http::response<http::string_body> response;
  std::optional<Rejection> failure;
};

Rejection unavailable(const ServerUrl& s, const std::string& step, const boost::system::error_code& ec) {
  return reject("remote.unavailable", "cannot reach gridtrustd at " + s.text + ": " + step + ": " + ec.message());
}

// Errors after connecting: a TLS alert (the server refused our certificate) or a
// connection that broke or timed out.
Rejection broken(const ServerUrl& s, const std::string& step, const boost::system::error_code& ec) {
  if (ec.category() == asio::error::get_ssl_category())
    return reject("remote.tls_failed", "gridtrustd at " + s.text + " refused the TLS session while " + step + ": " +
                                           ec.message());
  return unavailable(s, step, ec);
}

asio::awaitable<void> exchange(ssl::context& tls, const ServerUrl& server, Exchange& x) {
  constexpr auto tok = asio::as_tuple(asio::use_awaitable);
  auto executor = co_await asio::this_coro::executor;

  asio::ip::tcp::resolver resolver(executor);
  auto resolved = co_await resolver.async_resolve(server.host, server.port, tok);
  if (std::get<0>(resolved)) {
    x.failure = unavailable(server, "resolving " + server.host, std::get<0>(resolved));
    co_return;
  }

  beast::ssl_stream<beast::tcp_stream> stream(executor, tls);
  // The chain check alone would accept any server certificate of our PKI (an SECC
  // has serverAuth too): the certificate must also name the host we asked for.
  X509_VERIFY_PARAM* param = SSL_get0_param(stream.native_handle());
  if (is_ip_literal(server.host)) {
    X509_VERIFY_PARAM_set1_ip_asc(param, server.host.c_str());
  } else {
    X509_VERIFY_PARAM_set1_host(param, server.host.c_str(), 0);
    SSL_set_tlsext_host_name(stream.native_handle(), server.host.c_str());
  }

  beast::get_lowest_layer(stream).expires_after(kExchangeTimeout);
  auto connected = co_await beast::get_lowest_layer(stream).async_connect(std::get<1>(resolved), tok);
  if (std::get<0>(connected)) {
    x.failure = unavailable(server, "connecting", std::get<0>(connected));
    co_return;
  }
  auto [handshake_ec] = co_await stream.async_handshake(ssl::stream_base::client, tok);
  if (handshake_ec) {
    long verify = SSL_get_verify_result(stream.native_handle());
    std::string why = verify != X509_V_OK ? std::string("server certificate: ") + X509_verify_cert_error_string(verify)
                                          : handshake_ec.message();
    x.failure = reject("remote.tls_failed", "TLS handshake with gridtrustd at " + server.text + " failed: " + why);
    co_return;
  }
  auto written = co_await http::async_write(stream, x.request, tok);
  if (std::get<0>(written)) {
    x.failure = broken(server, "sending the request", std::get<0>(written));
    co_return;
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxAnswerBytes);
  auto read = co_await http::async_read(stream, buffer, parser, tok);
  if (std::get<0>(read)) {
    x.failure = broken(server, "reading the answer", std::get<0>(read));
    co_return;
  }
  x.response = parser.release();
  // We asked for Connection: close; the socket closes with the stream.
}

Result<json::value> answer_of(const ServerUrl& server, const http::response<http::string_body>& res) {
  boost::system::error_code ec;
  json::value v = json::parse(res.body(), ec);
  int status = res.result_int();
  if (status >= 200 && status < 300) {
    if (ec) return reject("remote.bad_response", "gridtrustd at " + server.text + " answered with invalid JSON");
    return v;
  }
  // The API's own error: {"error":{"code":...,"message":...}}, passed on unchanged.
  if (!ec && v.is_object()) {
    if (auto* err = v.as_object().if_contains("error"); err && err->is_object()) {
      auto* code = err->as_object().if_contains("code");
      auto* message = err->as_object().if_contains("message");
      if (code && code->is_string() && message && message->is_string())
        return reject(std::string(code->as_string()), std::string(message->as_string()));
    }
  }
  return reject("remote.bad_response",
                "gridtrustd at " + server.text + " answered HTTP " + std::to_string(status) + " without an error code");
}

Result<std::string> string_member(const json::value& v, const char* name) {
  if (v.is_object())
    if (auto* m = v.as_object().if_contains(name); m && m->is_string()) return std::string(m->as_string());
  return reject("remote.bad_response", std::string("answer has no string member \"") + name + "\"");
}

Result<json::object> object_answer(const json::value& v) {
  if (!v.is_object()) return reject("remote.bad_response", "answer is not a JSON object");
  return v.as_object();
}

Result<std::string> data_dir(const Args& a) {
  std::string d = data_dir_or_default(a.value("data-dir").value_or(""));
  if (d.empty()) return reject("usage.missing_option", "--data-dir is required (or set GRIDTRUST_DATA_DIR)");
  return d;
}

// The API takes the CSR as a JSON string: PEM as it is, DER (a SEQUENCE, 0x30) as PEM.
std::string csr_text(const Bytes& csr) {
  if (csr.empty() || csr.front() != 0x30) return std::string(csr.begin(), csr.end());
  std::string b64 = base64_encode(csr);
  std::string out = "-----BEGIN CERTIFICATE REQUEST-----\n";
  for (std::size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + "\n";
  return out + "-----END CERTIFICATE REQUEST-----\n";
}

Status remote_issue(const ServerUrl& server, const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(Args a, parse_args(words, {"data-dir", "profile", "csr", "subject", "out", "validity-days", "key-type"},
                                   {"generate-key", "json"}));
  GT_TRY_ASSIGN(std::string dir, data_dir(a));
  GT_TRY(no_positionals(a, "issue"));
  GT_TRY_ASSIGN(std::string profile, a.required("profile"));
  if (a.flag("generate-key") || a.value("subject") || a.value("validity-days") || a.value("key-type"))
    return reject("usage.remote_unsupported",
                  "the API issues from a CSR with the profile's validity; --generate-key, --key-type, --subject "
                  "and --validity-days work offline only");
  if (!a.value("csr")) return reject("usage.bad_combination", "give either --csr FILE or --subject S --generate-key");
  GT_TRY(check_output_path(a.value("out")));
  GT_TRY_ASSIGN(Bytes csr, read_file(*a.value("csr"), pki::kMaxCsrBytes));
  GT_TRY_ASSIGN(auto client, RemoteClient::open(dir, server));
  GT_TRY_ASSIGN(json::value v, client->call("/v1/certificates", json::object{{"profile", profile}, {"csr", csr_text(csr)}}));
  if (a.flag("json")) return write_output(a.value("out"), json::serialize(v) + "\n");
  GT_TRY_ASSIGN(std::string chain, string_member(v, "chain_pem"));
  return write_output(a.value("out"), chain);
}

Status remote_list(const ServerUrl& server, const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(Args a, parse_args(words, {"data-dir", "profile", "status", "expiring-before"}, {"json"}));
  GT_TRY_ASSIGN(std::string dir, data_dir(a));
  GT_TRY(no_positionals(a, "list"));
  auto status = a.value("status");
  if (status && *status != "valid" && *status != "revoked")
    return reject("usage.bad_value", "--status must be valid or revoked");
  std::optional<std::string> before;  // RFC 3339 UTC: compares as text
  if (auto v = a.value("expiring-before")) {
    try {
      std::size_t used = 0;
      long long t = std::stoll(*v, &used);
      if (used != v->size()) throw std::invalid_argument(*v);
      before = to_rfc3339(from_unix(t));
    } catch (const std::exception&) {
      return reject("usage.bad_value", "--expiring-before takes a Unix time in seconds");
    }
  }
  std::string target = "/v1/certificates";
  std::string sep = "?";
  for (const char* name : {"profile", "status"})
    if (auto v = a.value(name)) {
      target += sep + name + "=" + percent_encode(*v);
      sep = "&";
    }
  GT_TRY_ASSIGN(auto client, RemoteClient::open(dir, server));
  GT_TRY_ASSIGN(json::value v, client->call(target));
  const json::value* certs = v.is_object() ? v.as_object().if_contains("certificates") : nullptr;
  if (!certs || !certs->is_array()) return reject("remote.bad_response", "answer has no \"certificates\" array");
  json::array rows;
  for (const auto& c : certs->as_array()) {
    if (!c.is_object()) return reject("remote.bad_response", "a certificate in the answer is not an object");
    // The API has no expiry filter; the offline one is `not_after < T`.
    if (before) {
      GT_TRY_ASSIGN(std::string not_after, string_member(c, "not_after"));
      if (!(not_after < *before)) continue;
    }
    rows.push_back(c);
  }
  if (a.flag("json")) {
    std::cout << json::serialize(rows) << "\n";
  } else {
    for (const auto& r : rows) std::cout << app::record_line(r.as_object());
  }
  return Ok{};
}

Status remote_show(const ServerUrl& server, const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(Args a, parse_args(words, {"data-dir"}, {"json", "pem"}));
  GT_TRY_ASSIGN(std::string dir, data_dir(a));
  if (a.positional.size() != 1) return reject("usage.missing_argument", "show takes one SERIAL");
  GT_TRY_ASSIGN(std::string serial, normalise_serial(a.positional[0]));
  GT_TRY_ASSIGN(auto client, RemoteClient::open(dir, server));
  GT_TRY_ASSIGN(json::value v, client->call("/v1/certificates/" + serial));
  GT_TRY_ASSIGN(json::object o, object_answer(v));
  if (a.flag("json")) {
    std::cout << json::serialize(o) << "\n";
  } else if (a.flag("pem")) {
    if (auto pem = string_member(v, "pem"); pem.ok()) std::cout << pem.value();
  } else {
    std::cout << app::record_text(o);
  }
  return Ok{};
}

Status remote_revoke(const ServerUrl& server, const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(Args a, parse_args(words, {"data-dir", "reason"}, {"json"}));
  GT_TRY_ASSIGN(std::string dir, data_dir(a));
  if (a.positional.size() != 1) return reject("usage.missing_argument", "revoke takes one SERIAL");
  std::string reason = a.value("reason").value_or("unspecified");
  GT_TRY_ASSIGN(std::string serial, normalise_serial(a.positional[0]));
  GT_TRY_ASSIGN(auto client, RemoteClient::open(dir, server));
  GT_TRY_ASSIGN(json::value v, client->call("/v1/certificates/" + serial + "/revoke", json::object{{"reason", reason}}));
  if (a.flag("json")) {
    std::cout << json::serialize(v) << "\n";
    return Ok{};
  }
  GT_TRY_ASSIGN(std::string revoked, string_member(v, "serial"));
  std::cout << "revoked " << revoked << " (" << reason << ")\n";
  return Ok{};
}

// renew and rekey: one POST to /v1/certificates/{serial}/{renew|rekey}, answered as
// offline (write_replacement), a failed revocation of the old certificate included.
Status remote_renew(const ServerUrl& server, const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(Args a, parse_args(words, {"data-dir", "out"}, {"revoke-old", "json"}));
  GT_TRY_ASSIGN(std::string dir, data_dir(a));
  if (a.positional.size() != 1) return reject("usage.missing_argument", "renew takes one SERIAL");
  GT_TRY_ASSIGN(std::string serial, normalise_serial(a.positional[0]));
  GT_TRY(check_output_path(a.value("out")));
  GT_TRY_ASSIGN(auto client, RemoteClient::open(dir, server));
  GT_TRY_ASSIGN(json::value v, client->call("/v1/certificates/" + serial + "/renew",
                                            json::object{{"revoke_old", a.flag("revoke-old")}}));
  GT_TRY_ASSIGN(json::object answer, object_answer(v));
  return write_replacement(a, answer);
}

Status remote_rekey(const ServerUrl& server, const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(Args a, parse_args(words, {"data-dir", "csr", "out"}, {"generate-key", "revoke-old", "json"}));
  GT_TRY_ASSIGN(std::string dir, data_dir(a));
  if (a.positional.size() != 1) return reject("usage.missing_argument", "rekey takes one SERIAL");
  GT_TRY_ASSIGN(std::string serial, normalise_serial(a.positional[0]));
  bool generate = a.flag("generate-key");
  if (generate == a.value("csr").has_value())
    return reject("usage.bad_combination", "rekey needs either --csr FILE or --generate-key");
  GT_TRY(check_output_path(a.value("out")));
  json::object body{{"revoke_old", a.flag("revoke-old")}};
  if (generate) {
    body["hsm"] = true;
  } else {
    GT_TRY_ASSIGN(Bytes csr, read_file(*a.value("csr"), pki::kMaxCsrBytes));
    body["csr"] = csr_text(csr);
  }
  GT_TRY_ASSIGN(auto client, RemoteClient::open(dir, server));
  GT_TRY_ASSIGN(json::value v, client->call("/v1/certificates/" + serial + "/rekey", body));
  GT_TRY_ASSIGN(json::object answer, object_answer(v));
  return write_replacement(a, answer);
}

// crl and chain: one GET answering {"...": PEM}, written like the offline command.
Status remote_pem(const ServerUrl& server, const std::vector<std::string>& words, const char* command,
                  const char* option, const char* route, const char* member) {
  GT_TRY_ASSIGN(Args a, parse_args(words, {"data-dir", option, "out"}, {}));
  GT_TRY_ASSIGN(std::string dir, data_dir(a));
  GT_TRY(no_positionals(a, command));
  GT_TRY(check_output_path(a.value("out")));
  GT_TRY_ASSIGN(std::string name, a.required(option));
  GT_TRY_ASSIGN(auto client, RemoteClient::open(dir, server));
  GT_TRY_ASSIGN(json::value v, client->call(std::string(route) + percent_encode(name)));
  GT_TRY_ASSIGN(std::string pem, string_member(v, member));
  return write_output(a.value("out"), pem);
}

}  // namespace

Result<ServerUrl> parse_server_url(const std::string& url) {
  auto bad = [&](const std::string& why) {
    return reject("usage.bad_server_url", "server URL '" + url + "' " + why + " (expected https://HOST:PORT)");
  };
  const std::string scheme = "https://";
  if (url.rfind(scheme, 0) != 0) return bad("does not start with https://");
  std::string rest = url.substr(scheme.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty()) return bad("has no host");
  if (rest.find_first_of("/?#@ ") != std::string::npos) return bad("has a path, query or user part");
  ServerUrl u;
  u.text = url;
  std::string port_part;
  if (rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos) return bad("has an unclosed '['");
    u.host = rest.substr(1, close - 1);
    port_part = rest.substr(close + 1);
  } else {
    auto colon = rest.find(':');
    u.host = rest.substr(0, colon);
    if (colon != std::string::npos) port_part = rest.substr(colon);
    if (port_part.find(':', 1) != std::string::npos) return bad("needs brackets around an IPv6 address");
  }
  if (u.host.empty()) return bad("has no host");
  if (port_part.empty()) {
    u.port = "443";
  } else {
    u.port = port_part.substr(1);
    bool digits = port_part[0] == ':' && !u.port.empty() && u.port.size() <= 5 &&
                  u.port.find_first_not_of("0123456789") == std::string::npos;
    if (!digits || std::stoi(u.port) < 1 || std::stoi(u.port) > 65535) return bad("has a bad port");
  }
  return u;
}

struct RemoteClient::State {
  ServerUrl server;
  std::unique_ptr<app::PkiContext> pki;  // the token session the admin key signs through
  ssl::context tls{ssl::context::tls_client};
};

RemoteClient::RemoteClient(std::unique_ptr<State> state) : state_(std::move(state)) {}
RemoteClient::~RemoteClient() = default;

Result<std::unique_ptr<RemoteClient>> RemoteClient::open(const std::string& data_dir, ServerUrl server) {
  auto st = std::make_unique<State>();
  st->server = std::move(server);
  GT_TRY_ASSIGN(st->pki, app::open_pki(data_dir));
  const app::AppConfig& cfg = st->pki->config;
  SSL_CTX* native = st->tls.native_handle();
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1)
    return reject("internal.openssl", "SSL_CTX_set_min_proto_version failed: " + openssl_errors());

  // Who we are: init's admin certificate, its key in the token.
  const std::string& label = cfg.daemon.admin_cert_label;
  if (label.empty())
    return reject("config.invalid", "gridtrust.yaml: daemon.admin_cert_label is empty (gridtrust init writes it)");
  std::string chain_file = (std::filesystem::path(cfg.data_dir) / "admin-chain.pem").string();
  if (SSL_CTX_use_certificate_chain_file(native, chain_file.c_str()) != 1)
    return reject("config.invalid", "cannot load the admin certificate chain " + chain_file + ": " + openssl_errors());
  GT_TRY_ASSIGN(auto key, st->pki->token->find_key(label));
  if (!key) return reject("config.invalid", "HSM key '" + label + "' (daemon.admin_cert_label) is not in the token");
  GT_TRY_ASSIGN(EvpPkeyPtr pkey, hsm::make_evp_pkey(std::make_shared<hsm::HsmSigner>(st->pki->token, *key)));
  if (SSL_CTX_use_PrivateKey(native, pkey.get()) != 1 || SSL_CTX_check_private_key(native) != 1)
    return reject("config.invalid", chain_file + " does not belong to HSM key '" + label + "': " + openssl_errors());

  // Whom we trust: only the root above the daemon's csms-server certificates.
  GT_TRY_ASSIGN(auto chain, st->pki->ca->chain("csms-server"));
  if (chain.empty()) return reject("internal.error", "csms-server profile has no issuing chain");
  GT_TRY_ASSIGN(X509Ptr root, pki::certificate_from_der(chain.back()));
  if (X509_STORE_add_cert(SSL_CTX_get_cert_store(native), root.get()) != 1)
    return reject("internal.openssl", "X509_STORE_add_cert failed: " + openssl_errors());
  SSL_CTX_set_verify(native, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_verify_depth(native, 4);
  return std::unique_ptr<RemoteClient>(new RemoteClient(std::move(st)));
}

Result<json::value> RemoteClient::call(const std::string& target, const std::optional<json::object>& body) {
  GT_TRY_ASSIGN(std::string text, call_text(target, body));
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return reject("remote.bad_response", "gridtrustd at " + state_->server.text + " answered with invalid JSON");
  return v;
}

Result<std::string> RemoteClient::call_text(const std::string& target, const std::optional<json::object>& body) {
  Exchange x;
  x.request.method(body ? http::verb::post : http::verb::get);
  x.request.target(target);
  x.request.version(11);
  x.request.set(http::field::host, host_header(state_->server));
  x.request.set(http::field::user_agent, "gridtrust");
  x.request.set(http::field::accept, "application/json");
  x.request.keep_alive(false);
  if (body) {
    x.request.set(http::field::content_type, "application/json");
    x.request.body() = json::serialize(*body);
  }
  x.request.prepare_payload();

  asio::io_context ioc;
  asio::co_spawn(ioc, exchange(state_->tls, state_->server, x), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);  // a bug, not a refusal: main reports internal.error
  });
  ioc.run();
  if (x.failure) return *x.failure;
  int status = x.response.result_int();
  if (status >= 200 && status < 300) return std::move(x.response.body());
  GT_TRY(answer_of(state_->server, x.response));  // the API's error, or remote.bad_response
  return reject("remote.bad_response", "gridtrustd at " + state_->server.text + " answered HTTP " +
                                           std::to_string(status));
}

std::string percent_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
      out += static_cast<char>(ch);
    } else {
      out += '%';
      out += hex[ch >> 4];
      out += hex[ch & 15];
    }
  }
  return out;
}

Status run_remote_command(const std::string& server_url, const std::string& command,
                          const std::vector<std::string>& words) {
  GT_TRY_ASSIGN(ServerUrl server, parse_server_url(server_url));
  if (command == "issue") return remote_issue(server, words);
  if (command == "list") return remote_list(server, words);
  if (command == "show") return remote_show(server, words);
  if (command == "revoke") return remote_revoke(server, words);
  if (command == "renew") return remote_renew(server, words);
  if (command == "rekey") return remote_rekey(server, words);
  if (command == "crl") return remote_pem(server, words, "crl", "issuer", "/v1/crl/", "crl_pem");
  if (command == "chain") return remote_pem(server, words, "chain", "profile", "/v1/chain/", "chain_pem");
  if (command == "ocpp") return remote_ocpp(server, words);
  if (command == "dispatch") return remote_dispatch(server, words);
  if (command == "rotation" && !words.empty() && words[0] == "status") return remote_rotation_status(server, words);
  if (command == "sign" || command == "sign-batch" || command == "verify" || command == "verify-batch")
    return remote_signed_command(server, command, words);
  if (command == "init" || command == "issue-bulk" || command == "keys" || command == "audit")
    return reject("usage.remote_unsupported", "'" + command +
                                                  "' works on the data directory only; drop --server "
                                                  "(and unset GRIDTRUST_SERVER)");
  return reject("usage.unknown_command", "unknown command '" + command + "' (see gridtrust --help)");
}

}  // namespace gridtrust::cli
