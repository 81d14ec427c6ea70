#!/usr/bin/env bash
# Installs the Debian packages faxbox and its tests need (idempotent), before
# any test runs, so no two tests run apt at once. Fails loudly when a package
# cannot be installed.
set -euo pipefail
sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
updated=no
update() { [ $updated = yes ] || { $sudo apt-get update -qq; updated=yes; }; }

abi=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: linux-image-//p' | head -1)
[ -n "$abi" ] || { update; abi=$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: linux-image-//p' | head -1); }
[ -n "$abi" ] || { echo "deps: cannot tell Debian's kernel ABI (apt-cache depends linux-image-amd64)" >&2; exit 1; }
major=$(echo "$abi" | cut -d. -f1,2)

pkgs=(ghostscript libtiff-tools poppler-utils debootstrap chromium util-linux espeak-ng sox libsox-fmt-mp3
  dahdi genimage grub-efi-amd64-bin squashfs-tools mtools dosfstools ovmf e2fsprogs fdisk
  qemu-system-x86 busybox-static cpio make gcc "linux-image-$abi" "linux-headers-$abi" "linux-source-$major")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
for c in gs tiffinfo tiff2pdf chromium prlimit espeak-ng sox qemu-system-x86_64 debootstrap dahdi_cfg unshare genimage grub-mkimage mksquashfs sfdisk; do
  command -v "$c" >/dev/null || { echo "deps: $c not found after install" >&2; exit 1; }
done
[ -f "/boot/vmlinuz-$abi" ] && [ -f "/usr/src/linux-source-$major.tar.xz" ] || { echo "deps: kernel image or source for $abi missing" >&2; exit 1; }
