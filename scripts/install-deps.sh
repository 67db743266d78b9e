#!/usr/bin/env bash
# Installs what tally needs to build, test and run its demo on Debian 12:
# only the packages that are missing. Uses sudo when not root.
set -euo pipefail
PKGS=(build-essential cmake pkg-config git
      librdkafka-dev libpq-dev libjansson-dev zlib1g-dev libmicrohttpd-dev
      libcmocka-dev libgoogle-perftools-dev clang libclang-rt-14-dev
      postgresql-15 postgresql-client-15 kcat docker-compose python3 curl procps gdb)
missing=()
for p in "${PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
                missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
echo "installing: ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
