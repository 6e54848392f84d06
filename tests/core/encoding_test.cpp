#include <catch2/catch.hpp>

#include "core/digest.h"
#include "core/encoding.h"
#include "core/rejection.h"

using namespace gridtrust;

TEST_CASE("hex round-trips and rejects odd or non-hex input") {
  Bytes b = {0x00, 0x7f, 0xff, 0x10};
  CHECK(to_hex(b) == "007fff10");
  CHECK(to_hex(b, true) == "007FFF10");
  CHECK(from_hex("007FFF10") == b);
  CHECK_FALSE(from_hex("abc"));
  CHECK_FALSE(from_hex("zz"));
}

TEST_CASE("base64 follows RFC 4648 test vectors and is strict") {
  CHECK(base64_encode(to_bytes("")) == "");
  CHECK(base64_encode(to_bytes("f")) == "Zg==");
  CHECK(base64_encode(to_bytes("fo")) == "Zm8=");
  CHECK(base64_encode(to_bytes("foobar")) == "Zm9vYmFy");
  CHECK(base64_decode("Zm9vYg==") == to_bytes("foob"));
  CHECK_FALSE(base64_decode("Zm9vYg="));
  CHECK_FALSE(base64_decode("Zm9v Yg=="));
  CHECK_FALSE(base64_decode("Z==="));
  CHECK_FALSE(base64_decode("Zg==Zg=="));
}

TEST_CASE("base64url has no padding and no + or /") {
  Bytes b = {0xfb, 0xff};
  CHECK(base64url_encode(b) == "-_8");
  CHECK(base64url_decode("-_8") == b);
  CHECK_FALSE(base64url_decode("+/8"));
  CHECK_FALSE(base64url_decode("-_8="));
}

TEST_CASE("sha256 matches the FIPS 180-2 abc vector") {
  CHECK(to_hex(sha256(std::string_view("abc"))) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("one mapping from rejection code to exit code and HTTP status") {
  CHECK(exit_code_for("usage.unknown_option") == 2);
  CHECK(exit_code_for("csr.bad_signature") == 3);
  CHECK(exit_code_for("notfound.certificate") == 4);
  CHECK(exit_code_for("issuer.revoked") == 5);
  CHECK(exit_code_for("hsm.unavailable") == 6);
  CHECK(http_status_for("csr.bad_signature") == 400);
  CHECK(http_status_for("notfound.certificate") == 404);
  CHECK(http_status_for("conflict.already_revoked") == 409);
  CHECK(http_status_for("hsm.unavailable") == 503);
  CHECK(http_status_for("auth.forbidden") == 403);
}
