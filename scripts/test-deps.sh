#!/usr/bin/env bash
# What `npm test` needs beyond npm packages: a real Prometheus (server and promtool) that the
# observability tests scrape the mesh with, and a real Chromium the dashboard test drives.
# Installed from Debian's packages when missing (CI runs as root on a fresh machine); a machine
# that already has them is left alone.
set -euo pipefail
missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v promtool >/dev/null || missing+=(prometheus)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
# Unique names only.
mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "test-deps: installing ${pkgs[*]} from Debian's packages" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >&2
# --no-install-recommends: prometheus's recommends pull in node exporters the tests do not use.
$sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2
