#!/usr/bin/env bash
# Installs the programs Ordo's `just run` and `just test` use, when they are missing, from the
# system's packages (Debian and Ubuntu: apt-get). Says what it installs; silent otherwise, so it
# can run before every `just run` and `just test`.
set -euo pipefail

# program -> Debian package that provides it
declare -A PACKAGES=(
    [redis-server]=redis-server
)

missing=()
for program in "${!PACKAGES[@]}"; do
    command -v "$program" >/dev/null || missing+=("${PACKAGES[$program]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "bootstrap: installing ${missing[*]} (needed by just run / just test)"
if ! command -v apt-get >/dev/null; then
    echo "bootstrap: no apt-get here; install ${missing[*]} with your package manager" >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "bootstrap: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
fi
# Debian starts system-wide servers on install; Ordo runs private ones. policy-rc.d keeps the
# package scripts from starting them at all (101: action forbidden).
policy=/usr/sbin/policy-rc.d
created_policy=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod +x "$policy"
    created_policy=1
fi
trap 'if [ -n "$created_policy" ]; then $sudo rm -f "$policy"; fi' EXIT
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for program in "${!PACKAGES[@]}"; do
    echo "bootstrap: $program $("$program" --version 2>/dev/null | head -1 | cut -c1-60)"
done
