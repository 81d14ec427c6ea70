#!/usr/bin/env bash
# Installs the Debian packages faxbox and its tests need. Idempotent; fails
# loudly when a package cannot be installed.
set -euo pipefail
pkgs=(ghostscript libtiff-tools poppler-utils debootstrap chromium util-linux espeak-ng sox libsox-fmt-mp3)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
for c in gs tiffinfo tiff2pdf chromium prlimit espeak-ng sox; do
  command -v "$c" >/dev/null || { echo "deps: $c not found after install" >&2; exit 1; }
done
