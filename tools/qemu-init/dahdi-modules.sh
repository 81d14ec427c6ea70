#!/usr/bin/env bash
# Builds DAHDI's kernel modules (dahdi, dahdi_dynamic, dahdi_dynamic_loc, dahdi_echocan_mg2)
# for Debian's kernel, from the dahdi-linux source Debian ships in the lab's
# chroot (package dahdi-source), and prints the directory that holds them:
#
#   tools/qemu-init/dahdi-modules.sh LAB_ROOT
#
# Cached in /var/cache/faxbox-qemu/dahdi-<kernel>-<dahdi version>.
set -euo pipefail
lab=$1
abi=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: linux-image-//p' | head -1)
build=/lib/modules/$abi/build
[ -d "$build" ] || { echo "dahdi-modules: no kernel headers at $build (tools/deps.sh)" >&2; exit 1; }
tarball=$(ls "$lab"/usr/src/dahdi.tar.* 2>/dev/null | head -1)
[ -n "$tarball" ] || { echo "dahdi-modules: no dahdi-source in $lab (make lab-setup)" >&2; exit 1; }
ver=$(chroot "$lab" dpkg-query -W -f='${Version}' dahdi-source | tr -c 'A-Za-z0-9.\n' '_')
out=/var/cache/faxbox-qemu/dahdi-$abi-$ver
if [ -f "$out/dahdi_echocan_mg2.ko" ]; then echo "$out"; exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -xf "$tarball" -C "$work"
src=$(dirname "$(find "$work" -name dahdi-base.c -path '*drivers/dahdi/*' | head -1)")
[ -n "$src" ] || { echo "dahdi-modules: dahdi-base.c not in $tarball" >&2; exit 1; }
top=$(cd "$src/../.." && pwd)
# Only what the test needs: the core, the dynamic-span drivers and the mg2
# echo canceller.
make -s -C "$build" M="$src" DAHDI_INCLUDE="$top/include" \
  CONFIG_DAHDI=m CONFIG_DAHDI_DYNAMIC=m CONFIG_DAHDI_DYNAMIC_LOC=m CONFIG_DAHDI_ECHOCAN_MG2=m \
  -j"$(nproc)" modules >"$work/build.log" 2>&1 || { tail -30 "$work/build.log" >&2; exit 1; }
mkdir -p "$out.tmp"
cp "$src/dahdi.ko" "$src/dahdi_dynamic.ko" "$src/dahdi_dynamic_loc.ko" "$src/dahdi_echocan_mg2.ko" "$out.tmp/"
rm -rf "$out"; mv "$out.tmp" "$out"
echo "$out"
