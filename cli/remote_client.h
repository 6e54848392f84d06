#pragma once
// Remote mode: `gridtrust --server https://HOST:PORT COMMAND ...` (or GRIDTRUST_SERVER)
// runs issue, list, show, revoke, renew, rekey, crl and chain through gridtrustd's
// mTLS API instead of on the data directory's store.
//
// The caller is the admin certificate `gridtrust init` made: its key never leaves the
// data directory's token, so the CLI still opens that token (PIN as for offline
// commands) and OpenSSL signs the TLS handshake through the HSM bridge. The server
// must chain to the PKI's own root and name the host of the URL. Output and error
// lines are those of the offline commands; an API error {"error":{"code","message"}}
// becomes the same `error: <code>: <message>` and exit code.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "core/rejection.h"

namespace gridtrust::cli {

// https://HOST:PORT with an optional trailing '/'; HOST may be a name, IPv4 or [IPv6].
struct ServerUrl {
  std::string host;  // without brackets
  std::string port;
  std::string text;  // as given, for messages
};
Result<ServerUrl> parse_server_url(const std::string& url);

// One TLS client identity (admin key in the token, admin-chain.pem) and trust anchor;
// each call is one HTTP/1.1 request on its own connection.
class RemoteClient {
 public:
  static Result<std::unique_ptr<RemoteClient>> open(const std::string& data_dir, ServerUrl server);

  RemoteClient(const RemoteClient&) = delete;  // owns the TLS context and the token session
  RemoteClient& operator=(const RemoteClient&) = delete;
  ~RemoteClient();

  // GET when body is empty, POST with a JSON body otherwise. A 2xx JSON answer, or
  // the API's rejection, or remote.* when the server cannot be reached or understood.
  Result<boost::json::value> call(const std::string& target, const std::optional<boost::json::object>& body = {});
  // The same, with a 2xx answer's body as the server sent it: for answers whose
  // numbers must survive byte for byte (signed messages; protocol::parse_strict).
  Result<std::string> call_text(const std::string& target, const std::optional<boost::json::object>& body = {});

 private:
  struct State;
  explicit RemoteClient(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// ocpp_commands.cpp: gridtrust --server URL ocpp SUBCOMMAND, through /v1/ocpp.
Status remote_ocpp(const ServerUrl& server, const std::vector<std::string>& words);
// rotation_status_command.cpp: gridtrust --server URL rotation status, through /v1/rotation/status.
Status remote_rotation_status(const ServerUrl& server, const std::vector<std::string>& words);

// dispatch_commands.cpp: gridtrust --server URL dispatch SUBCOMMAND, through /v1/dispatch.
Status remote_dispatch(const ServerUrl& server, const std::vector<std::string>& words);

// sign_commands.cpp: gridtrust --server URL sign | sign-batch | verify | verify-batch,
// through /v1/commands (the daemon's aggregator signer and replay guard).
Status remote_signed_command(const ServerUrl& server, const std::string& command,
                             const std::vector<std::string>& words);

// RFC 3986 percent-encoding of a path segment or query value (unreserved kept).
std::string percent_encode(const std::string& s);

Status run_remote_command(const std::string& server_url, const std::string& command,
                          const std::vector<std::string>& words);

}  // namespace gridtrust::cli
