// `gridtrust --server URL ...`: the CLI's remote mode against a real gridtrustd, with
// init's admin certificate (key in the token) as the TLS client identity. Every
// remote command must print what its offline twin prints on the same data directory.
#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "tests/support/daemon_process.h"
#include "tests/support/test_support.h"

namespace gt = gridtrust;
namespace json = boost::json;
using gt::test::CommandResult;
using gt::test::DaemonProcess;
using gt::test::InitializedPki;
using gt::test::read_file;
using gt::test::run;
using gt::test::sh_quote;
using gt::test::TempDir;
using gt::test::write_file;

namespace {

struct Fixture {
  InitializedPki pki;
  TempDir work;
  std::unique_ptr<DaemonProcess> daemon;
  std::string csr;  // a valid SECC CSR

  Fixture() {
    daemon = std::make_unique<DaemonProcess>(pki, work, GRIDTRUSTD);
    daemon->start();
    csr = work / "secc.csr";
    auto key = gt::test::make_key("P-256");
    write_file(csr, gt::test::make_csr_pem(key.get(), "CN=DE*ABC*E9001,O=gridtrust demo,DC=CPO"));
  }
  // The daemon's certificate names localhost (SAN DNS:localhost).
  CommandResult remote(const std::string& args) const { return pki.gt("--server " + daemon->api() + " " + args); }
  CommandResult offline(const std::string& args) const { return pki.gt(args); }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

}  // namespace

TEST_CASE("remote issue, list, show, revoke, crl and chain print what the offline commands print",
          "[integration][remote]") {
  auto& f = fixture();
  auto issued = f.remote("issue --profile secc --csr " + sh_quote(f.csr) + " --json");
  INFO(describe(issued) << f.daemon->log());
  REQUIRE(issued.exit_code == 0);
  auto body = json::parse(issued.out).as_object();
  std::string serial(body.at("serial").as_string());
  CHECK(body.at("profile").as_string() == "secc");
  CHECK(gt::test::split_pem_certs(std::string(body.at("chain_pem").as_string())).size() == 3);

  // Without --json: the chain PEM, as offline.
  auto pem = f.remote("issue --profile secc --csr " + sh_quote(f.csr));
  INFO(describe(pem));
  REQUIRE(pem.exit_code == 0);
  CHECK(gt::test::split_pem_certs(pem.out).size() == 3);
  CHECK(pem.out.rfind("-----BEGIN CERTIFICATE-----", 0) == 0);

  for (std::string args : {"list --json", "list", "list --profile secc --status valid --json", "list --status revoked",
                           "list --expiring-before 4102444800 --json", "list --expiring-before 1"}) {
    auto remote = f.remote(args);
    auto offline = f.offline(args);
    INFO(args << "\n" << describe(remote));
    REQUIRE(remote.exit_code == 0);
    CHECK(remote.out == offline.out);
  }
  CHECK(json::parse(f.remote("list --json").out).as_array().size() >= 4);  // init's 2, this test's 2

  for (std::string args : {"show " + serial, "show " + serial + " --json", "show 0x" + serial + " --pem"}) {
    auto remote = f.remote(args);
    INFO(args << "\n" << describe(remote));
    REQUIRE(remote.exit_code == 0);
    CHECK(remote.out == f.offline(args).out);
  }

  auto revoked = f.remote("revoke " + serial + " --reason keyCompromise");
  INFO(describe(revoked));
  REQUIRE(revoked.exit_code == 0);
  CHECK(revoked.out == "revoked " + serial + " (keyCompromise)\n");
  auto after = f.offline("show " + serial + " --json");
  CHECK(json::parse(after.out).as_object().at("status").as_string() == "revoked");
  CHECK(f.remote("show " + serial).out == f.offline("show " + serial).out);
  CHECK(f.remote("show " + serial).out.find("(keyCompromise)") != std::string::npos);

  // CRL: signed by the daemon, written to --out, lists the revoked serial.
  std::string crl = f.work / "remote.crl", chain = f.work / "cpo-sub2-chain.pem";
  auto c = f.remote("crl --issuer cpo-sub2 --out " + sh_quote(crl));
  INFO(describe(c));
  REQUIRE(c.exit_code == 0);
  CHECK(c.out.empty());
  REQUIRE(f.offline("chain --profile cpo-sub2 --out " + sh_quote(chain)).exit_code == 0);
  auto v = run("openssl crl -in " + sh_quote(crl) + " -CAfile " + sh_quote(chain) + " -noout -verify -text");
  INFO(describe(v));
  CHECK(v.exit_code == 0);
  CHECK(v.out.find("Serial Number: " + serial) != std::string::npos);

  auto remote_chain = f.remote("chain --profile secc");
  REQUIRE(remote_chain.exit_code == 0);
  CHECK(remote_chain.out == f.offline("chain --profile secc").out);
  CHECK(gt::test::split_pem_certs(remote_chain.out).size() >= 2);
}

TEST_CASE("an API rejection prints the offline error line and exits with the offline code",
          "[integration][remote][errors]") {
  auto& f = fixture();
  std::string issue = "issue --profile no-such-profile --csr " + sh_quote(f.csr);
  auto remote = f.remote(issue);
  auto offline = f.offline(issue);
  INFO(describe(remote) << "\n" << describe(offline));
  CHECK(remote.exit_code != 0);
  CHECK(remote.exit_code == offline.exit_code);
  CHECK(error_code_of(remote) == "profile.unknown");
  CHECK(error_code_of(remote) == error_code_of(offline));
  CHECK(remote.out.empty());
  CHECK(std::count(remote.err.begin(), remote.err.end(), '\n') == 1);

  auto missing = f.remote("show 0BADC0FFEE");
  CHECK(error_code_of(missing) == "notfound.certificate");
  CHECK(missing.exit_code == 4);
  CHECK(missing.exit_code == f.offline("show 0BADC0FFEE").exit_code);

  auto bad_reason = f.remote("revoke 0BADC0FFEE --reason no-such-reason");
  CHECK(error_code_of(bad_reason) == error_code_of(f.offline("revoke 0BADC0FFEE --reason no-such-reason")));

  // Refused before anything is sent, with the offline codes.
  CHECK(error_code_of(f.remote("show not-hex")) == "usage.bad_serial");
  CHECK(error_code_of(f.remote("list --status maybe")) == "usage.bad_value");
  CHECK(error_code_of(f.remote("issue --profile secc --subject CN=x --generate-key")) == "usage.remote_unsupported");
  CHECK(error_code_of(f.remote("keys")) == "usage.remote_unsupported");
}

TEST_CASE("GRIDTRUST_SERVER selects remote mode like --server", "[integration][remote]") {
  auto& f = fixture();
  auto r = run("GRIDTRUST_SERVER=" + sh_quote(f.daemon->api()) + " " + sh_quote(gt::test::cli()) +
               " chain --profile secc --data-dir " + sh_quote(f.pki.data_dir()));
  INFO(describe(r));
  REQUIRE(r.exit_code == 0);
  CHECK(r.out == f.offline("chain --profile secc").out);
  auto bad = run("GRIDTRUST_SERVER=http://localhost:1 " + sh_quote(gt::test::cli()) + " list --data-dir " +
                 sh_quote(f.pki.data_dir()));
  CHECK(error_code_of(bad) == "usage.bad_server_url");
  CHECK(bad.exit_code == 2);
}

TEST_CASE("a server nobody answers on is remote.unavailable, exit 6", "[integration][remote][errors]") {
  auto& f = fixture();
  int port = gt::test::free_port();
  auto r = f.pki.gt("--server https://localhost:" + std::to_string(port) + " list");
  INFO(describe(r));
  CHECK(r.exit_code == 6);
  CHECK(r.err.rfind("error: remote.unavailable: cannot reach gridtrustd at https://localhost:", 0) == 0);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(r.out.empty());
}

TEST_CASE("the server's certificate must name the host of the URL: 127.0.0.1 is not localhost",
          "[integration][remote][tls]") {
  auto& f = fixture();
  std::string url = f.daemon->api();
  gt::test::replace_all(url, "localhost", "127.0.0.1");
  auto r = f.pki.gt("--server " + url + " list");
  INFO(describe(r));
  CHECK(error_code_of(r) == "remote.tls_failed");
  CHECK(r.err.find("IP address mismatch") != std::string::npos);
}
