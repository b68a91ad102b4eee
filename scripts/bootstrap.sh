#!/usr/bin/env bash
# Installs the programs Ordo's `just run` and `just test` use, when they are missing, from the
# system's packages (Debian and Ubuntu: apt-get). Says what it installs; silent otherwise, so it
# can run before every `just run` and `just test`.
set -euo pipefail

# program -> Debian package that provides it. `bootstrap.sh run` needs only Redis; the tests
# (`bootstrap.sh test`, and the default) also start private PostgreSQL clusters and drive the
# web console in headless Chromium through chromedriver.
declare -A PACKAGES=([redis-server]=redis-server)
if [ "${1:-test}" != run ]; then
    PACKAGES+=([initdb]=postgresql [chromium]=chromium [chromedriver]=chromium-driver)
fi

# Whether `program` is installed. Debian keeps PostgreSQL's server programs off PATH, in
# /usr/lib/postgresql/<version>/bin, where Ordo's private clusters look for them too.
installed() {
    command -v "$1" >/dev/null && return 0
    [ "$1" = initdb ] && compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

missing=()
for program in "${!PACKAGES[@]}"; do
    installed "$program" || missing+=("${PACKAGES[$program]}")
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
echo "bootstrap: installed ${missing[*]}"
