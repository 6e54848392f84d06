#!/usr/bin/env bash
# Quick start: install what is missing, build, initialise an embedded PKI (SoftHSM2
# token inside the data directory), show an issuance round trip with the offline CLI
# (issue for a charger, check with openssl, revoke, publish the CRL), then run the
# daemon in the foreground on that token (Ctrl-C stops it).
#   ./scripts/quickstart.sh [DATA_DIR]      (default ./gridtrust-data)
#   GRIDTRUST_NO_DAEMON=1                   stop after the round trip
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target gridtrust gridtrustd
gt=./build/cli/gridtrust
data=${1:-./gridtrust-data}
if [ ! -f "$data/gridtrust.yaml" ]; then
  "$gt" init --data-dir "$data"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "== SECC certificate (ISO 15118-2) from a CSR made by openssl"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/secc.key" \
  -subj "/CN=DE*GTR*E$RANDOM/O=Demo CPO/DC=CPO" -out "$work/secc.csr" 2>/dev/null
"$gt" issue --data-dir "$data" --profile secc --csr "$work/secc.csr" --out "$work/secc-chain.pem"
"$gt" chain --data-dir "$data" --profile secc --out "$work/chain.pem"
awk '/BEGIN/{n++} {if (n==3) print}' "$work/chain.pem" > "$work/root.pem"
openssl verify -x509_strict -CAfile "$work/root.pem" -untrusted "$work/chain.pem" "$work/secc-chain.pem"
echo "== CSMS server certificate with its key generated in the HSM"
"$gt" issue --data-dir "$data" --profile csms-server --subject "CN=csms.localhost,O=Demo CPO" --generate-key --json
echo "== revoke the SECC certificate and publish the CRL of cpo-sub2"
serial=$(openssl x509 -in "$work/secc-chain.pem" -noout -serial | cut -d= -f2)
"$gt" revoke --data-dir "$data" "$serial" --reason superseded
"$gt" crl --data-dir "$data" --issuer cpo-sub2 --out "$data/cpo-sub2.crl"
openssl crl -in "$data/cpo-sub2.crl" -noout -text | sed -n '1,20p'
echo "== certificates, keys, audit"
"$gt" list --data-dir "$data"
"$gt" keys --data-dir "$data"
"$gt" audit verify --data-dir "$data"
echo "PKI ready in $data (gridtrust --data-dir $data --help for more)"
if [ "${GRIDTRUST_NO_DAEMON:-0}" != "1" ]; then
  echo "== gridtrustd on $data (API: mTLS with $data/admin-chain.pem; status: plain HTTP CRLs)"
  exec ./build/daemon/gridtrustd --data-dir "$data"
fi
