#!/usr/bin/env bash
# Installs the Debian 12 packages gridtrust builds and tests with (only what is missing).
set -euo pipefail
packages=(
  g++ cmake ninja-build pkg-config        # toolchain
  libssl-dev openssl                      # OpenSSL 3 (X.509, CRL, the EVP bridge)
  libp11-kit-dev p11-kit p11-kit-modules  # PKCS#11 module loading, p11-kit server/client
  softhsm2                                # the embedded token
  libboost1.81-dev                        # Boost.JSON now; Asio/Beast for gridtrustd
  libsqlite3-dev sqlite3                  # the store
  libyaml-cpp-dev                         # gridtrust.yaml and profiles
  catch2                                  # tests (Catch2 v2)
  opensc                                  # pkcs11-tool: independent check of key attributes
  gnutls-bin                              # certtool: independent chain verification
  curl                                    # independent HTTP/mTLS client for gridtrustd tests
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
