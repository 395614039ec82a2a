#!/usr/bin/env bash
# Installs what is missing: Debian packages (build and test tools) and the
# npm packages pinned in package-lock.json (the Copilot runtime; test clients).
# Usage: scripts/deps.sh run|test
set -euo pipefail
mode=${1:-run}
cd "$(dirname "$0")/.."

apt_pkgs=(build-essential pkg-config libevent-dev libjansson-dev libcurl4-openssl-dev libyaml-dev libssl-dev libsqlite3-dev)
if [ "$mode" = test ]; then
  apt_pkgs+=(libcmocka-dev clang libclang-rt-14-dev sqlite3 postgresql)
fi
command -v node >/dev/null 2>&1 || apt_pkgs+=(nodejs npm)

missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm: reinstall when the lockfile changed since the last install.
stamp=node_modules/.gw-stamp-$mode
want=$(sha256sum package-lock.json | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "deps: npm install from package-lock.json ($mode)" >&2
  # Not `npm ci`: the lockfile cannot list the other platforms' optional
  # runtime packages when the registry lacks them, and `npm ci` then refuses.
  # `npm install --no-save` installs exactly the locked versions all the same.
  omit=; [ "$mode" = test ] || omit=--omit=dev
  npm install --no-save $omit --no-audit --no-fund --loglevel=error >&2
  echo "$want" > "$stamp"
fi
