#!/usr/bin/env bash
# Boots the faxbox init scripts under BusyBox init in qemu, on Debian's
# kernel (the same harness as tools/qemu-gpio):
#
#   tools/qemu-init/run.sh FAXBOX_BINARY (static, linux/amd64)
#
# /etc/init.d/rcS starts S20dahdi and S95faxbox, a check fetches /healthz, then poweroff
# runs rcK, which stops faxbox; the console (stdout) carries the verdict lines
# FAXBOX-INIT-HEALTHZ, FAXBOX-INIT-STOP and the tail of faxbox's log.
set -euo pipefail
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
abi=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: linux-image-//p' | head -1)
[ -n "$abi" ] || { apt-get update -qq; abi=$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: linux-image-//p' | head -1); }
need=()
for p in qemu-system-x86 busybox-static cpio "linux-image-$abi"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  exec 9>/var/lock/faxbox-apt.lock; flock 9 # tests in parallel must not run apt at once
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  }
fi
root=$(mktemp -d)
trap 'rm -rf "$root" "$root.cpio.gz"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,proc,sys,dev,tmp,etc/init.d,etc/faxbox,var/run,var/log,var/lib/faxbox}
cp /bin/busybox "$root/bin/busybox"
for a in $("$root/bin/busybox" --list); do [ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"; done
ln -s /bin/busybox "$root/init"
ln -s /bin/busybox "$root/sbin/init"
cp "$bin" "$root/usr/bin/faxbox"
cp "$here/../../services/init/S20dahdi" "$here/../../services/init/S95faxbox" "$root/etc/init.d/"
# The image's default config has no token: the first script to start makes
# /var/lib/faxbox/faxbox.json with a fresh one (faxbox firstboot). The pc-x86
# board carries a 4-port FXO card: S20dahdi renders its system.conf (there is
# no DAHDI driver in this kernel, so it stops there).
cat > "$root/etc/faxbox/faxbox.json" <<'JSON'
{"listen": "127.0.0.1:8080", "data_dir": "/var/lib/faxbox", "limits": {"min_free_bytes": 0},
 "panel": {"board": "pc-x86"}}
JSON
cat > "$root/etc/inittab" <<'TAB'
::sysinit:/etc/init.d/rcS
::shutdown:/etc/init.d/rcK
TAB
cat > "$root/etc/init.d/rcS" <<'RCS'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs tmp /tmp
ip link set lo up
for s in /etc/init.d/S??*; do "$s" start; done
ok=no
for i in $(seq 1 50); do
  if wget -q -O - http://127.0.0.1:8080/healthz 2>/dev/null | grep -q '"ok"'; then ok=yes; break; fi
  sleep 0.2
done
echo "FAXBOX-INIT-HEALTHZ $ok"
tok=$(grep -o '"[0-9a-f]\{32\}"' /var/lib/faxbox/faxbox.json | head -1 | tr -d '"')
auth=no
wget -q -O - --header "Authorization: Bearer $tok" http://127.0.0.1:8080/v1/status 2>/dev/null | grep -q '"version"' && auth=yes
echo "FAXBOX-INIT-AUTH $auth"
sed -n 's/^fxsks = /FAXBOX-INIT-DAHDI fxsks = /p' /var/lib/faxbox/dahdi/system.conf
/etc/init.d/S95faxbox status
poweroff
RCS
cat > "$root/etc/init.d/rcK" <<'RCK'
#!/bin/sh
for s in $(ls -r /etc/init.d/S??*); do "$s" stop && echo "FAXBOX-INIT-STOP $s ok" || echo "FAXBOX-INIT-STOP $s fail"; done
echo "--- faxbox log"
tail -5 /var/log/faxbox.log
echo "--- end"
RCK
chmod +x "$root"/etc/init.d/*
(cd "$root" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$root.cpio.gz"
timeout 300 qemu-system-x86_64 -m 512 -smp 2 -nic none -nographic -no-reboot \
  -kernel "/boot/vmlinuz-$abi" -initrd "$root.cpio.gz" -append "console=ttyS0 quiet panic=-1" </dev/null
