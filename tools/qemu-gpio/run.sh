#!/usr/bin/env bash
# Runs a GPIO test binary against the kernel's gpio-sim inside qemu.
#
#   tools/qemu-gpio/run.sh TEST_BINARY [test args...]
#
# Everything comes from Debian packages: the distribution kernel
# (linux-image-<abi>), gpio-sim built out of tree from linux-source against
# linux-headers-<abi> (Debian kernels do not enable CONFIG_GPIO_SIM),
# configfs.ko from the image, busybox-static for /init. Kernel and module are
# cached in $FAXBOX_QEMU_CACHE (default /var/cache/faxbox-qemu/<abi>). The
# guest's console goes to stdout; the test's verdict is the line
# "FAXBOX-GPIO-EXIT <code>".
set -euo pipefail
bin=$1; shift
abi=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: linux-image-//p' | head -1)
[ -n "$abi" ] || { apt-get update -qq; abi=$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: linux-image-//p' | head -1); }
[ -n "$abi" ] || { echo "qemu-gpio: cannot tell the kernel ABI (apt-cache depends linux-image-amd64)" >&2; exit 1; }
major=$(echo "$abi" | cut -d. -f1,2)
cache=${FAXBOX_QEMU_CACHE:-/var/cache/faxbox-qemu}/$abi
mkdir -p "$cache"

need=()
for p in qemu-system-x86 busybox-static cpio "linux-image-$abi" "linux-headers-$abi" "linux-source-$major" make gcc; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  exec 9>/var/lock/faxbox-apt.lock; flock 9 # tests in parallel must not run apt at once
  echo "qemu-gpio: installing ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  }
fi

if [ ! -f "$cache/gpio-sim.ko" ]; then
  work=$(mktemp -d)
  tar -xf "/usr/src/linux-source-$major.tar.xz" -C "$work" --strip-components=1 \
    "linux-source-$major/drivers/gpio/gpio-sim.c" "linux-source-$major/drivers/gpio/gpiolib.h" "linux-source-$major/kernel/irq/irq_sim.c"
  mkdir "$work/m"
  cp "$work/drivers/gpio/gpio-sim.c" "$work/m/gpio-sim-main.c"
  cp "$work/drivers/gpio/gpiolib.h" "$work/m/"
  # irq_to_desc is not exported to modules: use generic_handle_irq.
  sed 's/handle_simple_irq(irq_to_desc(irqnum))/generic_handle_irq(irqnum)/' "$work/kernel/irq/irq_sim.c" > "$work/m/irq_sim.c"
  printf 'obj-m := gpio-sim.o\ngpio-sim-y := gpio-sim-main.o irq_sim.o\n' > "$work/m/Makefile"
  make -s -C "/usr/src/linux-headers-$abi" M="$work/m" modules >&2
  cp "$work/m/gpio-sim.ko" "$cache/"
  rm -rf "$work"
fi
cp "/boot/vmlinuz-$abi" "$cache/vmlinuz" 2>/dev/null || true
cfs=$(find "/lib/modules/$abi" -name 'configfs.ko*' | head -1)

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,proc,sys,dev,tmp,mnt}
cp /bin/busybox "$root/bin/busybox"
for a in sh mount insmod poweroff mkdir cat echo sleep; do ln -s busybox "$root/bin/$a"; done
case "$cfs" in
  *.xz) xz -dc "$cfs" > "$root/configfs.ko" ;;
  *.zst) zstd -qdc "$cfs" > "$root/configfs.ko" ;;
  "") : ;;
  *) cp "$cfs" "$root/configfs.ko" ;;
esac
cp "$cache/gpio-sim.ko" "$root/"
cp "$bin" "$root/test"
args="$*"
cat > "$root/init" <<INIT
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
[ -f /configfs.ko ] && insmod /configfs.ko
insmod /gpio-sim.ko || echo "FAXBOX-GPIO: gpio-sim did not load"
mount -t configfs none /sys/kernel/config
cd /tmp
/test $args
echo "FAXBOX-GPIO-EXIT \$?"
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$root.cpio.gz"
timeout 600 qemu-system-x86_64 -m 512 -smp 2 -nic none -nographic -no-reboot \
  -kernel "$cache/vmlinuz" -initrd "$root.cpio.gz" -append "console=ttyS0 quiet panic=-1" </dev/null
rm -f "$root.cpio.gz"
