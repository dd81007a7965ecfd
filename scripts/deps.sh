#!/usr/bin/env bash
# Installs the Debian 12 packages jam needs to build, run and test, and with
# the argument "bench" those make bench needs besides.
# Idempotent: asks apt only when something is missing, so a second run is quick
# and needs neither root nor the network.
set -euo pipefail

packages=(
	build-essential pkg-config perl     # compiler, make, prove
	postgresql-15 postgresql-server-dev-15 postgresql-15-cron
	libsodium-dev                       # BLAKE2b, Ed25519
	libjson-c-dev libcivetweb-dev libpq-dev libcurl4-openssl-dev # the HTTP shim
	libssl-dev                          # SHA-256 (libcrypto); civetweb loads libssl.so for HTTPS
	clang                               # libFuzzer, for the shim's fuzz target
	wrk curl openssl                    # make bench (the shim under load), TLS tests
	libipc-run-perl                     # PostgreSQL::Test::Cluster (TAP tests)
	golang-go golang-golang-x-mod-dev   # x/mod's note and tlog check jam's proofs (TAP)
	nodejs npm                          # the OpenAPI validators of TAP 053 (npm packages, see scripts/test.sh)
)
# Only for make bench: HAProxy, the bare relay the shim is measured beside.
# Debian enables a service with it, which make run and make test have no
# business installing.
if [ "${1:-}" = bench ]; then
	packages+=(haproxy)
fi

missing=()
for p in "${packages[@]}"; do
	# NodeSource's nodejs bundles npm (and conflicts with Debian's npm).
	[ "$p" = npm ] && command -v npm >/dev/null && continue
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$status" = installed ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "deps: missing Debian packages: ${missing[*]}" >&2
	echo "deps: run this as root, or: sudo apt-get install ${missing[*]}" >&2
	exit 1
fi

echo "deps: installing ${missing[*]}"
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
