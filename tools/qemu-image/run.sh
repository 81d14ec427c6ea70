#!/usr/bin/env bash
# Builds the pc_x86_64 disk layout with the real genimage from faxbox's own
# board files (buildroot/board/faxbox/pc-x86_64: genimage.cfg, grub.cfg,
# post-image.sh) on stand-in inputs, and boots it under UEFI (OVMF) in qemu:
#
#   tools/qemu-image/run.sh OUTDIR
#
# Stand-ins for what Buildroot builds: GRUB's EFI binary made by
# grub-mkimage with Buildroot's default x86_64-efi module list, Debian's
# kernel as bzImage, a small squashfs root. post-image.sh runs as Buildroot
# runs it (cwd = a tree with support/scripts/genimage.sh, BINARIES_DIR set);
# that genimage.sh calls genimage as Buildroot's does. The console goes to
# OUTDIR/console.log, the partition table to OUTDIR/sfdisk.json, the EFI
# partition's listing to OUTDIR/efi.txt and the data partition's label and
# root directory to OUTDIR/data.txt. Debian's kernel has squashfs and
# virtio-blk as modules and there is no initramfs, so the boot is followed
# as far as the kernel's command line; the image's own kernel has them
# built in (board/faxbox/linux.fragment).
set -euo pipefail
out=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
board=$here/../../buildroot/board/faxbox/pc-x86_64
for c in genimage grub-mkimage mksquashfs mkfs.vfat mcopy mdir mke2fs debugfs blkid sfdisk qemu-system-x86_64; do
  command -v "$c" >/dev/null || { echo "qemu-image: $c missing (tools/deps.sh installs it)" >&2; exit 1; }
done
ovmf=/usr/share/ovmf/OVMF.fd
[ -f "$ovmf" ] || { echo "qemu-image: $ovmf missing (package ovmf)" >&2; exit 1; }
kernel=$(ls /boot/vmlinuz-* | sort -V | tail -1)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bin=$work/images; target=$work/target; br=$work/buildroot
mkdir -p "$bin/efi-part/EFI/BOOT" "$target/sbin" "$br/support/scripts"
# GRUB as Buildroot's grub2 package builds it for x86_64-efi.
grub-mkimage -O x86_64-efi -p /EFI/BOOT -o "$bin/efi-part/EFI/BOOT/bootx64.efi" \
  boot linux ext2 fat squash4 part_msdos part_gpt normal efi_gop
cp "$kernel" "$bin/bzImage"
printf '#!/bin/sh\necho faxbox\n' > "$target/sbin/init"; chmod +x "$target/sbin/init"
mksquashfs "$target" "$bin/rootfs.squashfs" -noappend -quiet >/dev/null
# Buildroot's support/scripts/genimage.sh, reduced to the call it makes.
cat > "$br/support/scripts/genimage.sh" <<'SH'
#!/bin/sh
set -e
[ "$1" = -c ] || { echo "usage: genimage.sh -c CONFIG" >&2; exit 1; }
tmp=$(mktemp -d)
genimage --rootpath "$TARGET_DIR" --tmppath "$tmp/genimage.tmp" --inputpath "$BINARIES_DIR" --outputpath "$BINARIES_DIR" --config "$2"
rm -rf "$tmp"
SH
chmod +x "$br/support/scripts/genimage.sh"
(cd "$br" && BINARIES_DIR=$bin TARGET_DIR=$target BR2_CONFIG=/dev/null "$board/post-image.sh" "$bin")
sfdisk --json "$bin/disk.img" > "$out/sfdisk.json"
start=$(sfdisk --json "$bin/disk.img" | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitiontable"]["partitions"][0]["start"]*512)')
MTOOLS_SKIP_CHECK=1 mdir -/ -i "$bin/disk.img@@$start" ::/ > "$out/efi.txt"
MTOOLS_SKIP_CHECK=1 mtype -i "$bin/disk.img@@$start" ::/EFI/BOOT/grub.cfg >> "$out/efi.txt"
{ blkid -o export "$bin/data.ext4"; debugfs -R 'ls /' "$bin/data.ext4" 2>/dev/null; } > "$out/data.txt"
cp "$ovmf" "$work/OVMF.fd"
timeout 120 qemu-system-x86_64 -m 512 -nographic -no-reboot -nic none -bios "$work/OVMF.fd" \
  -drive file="$bin/disk.img",format=raw,if=virtio </dev/null > "$out/console.log" 2>&1 &
pid=$!
# The stand-in kernel stops at "Waiting for root device" (see above).
for _ in $(seq 1 220); do
  grep -q "Waiting for root device" "$out/console.log" 2>/dev/null && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.5
done
kill $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
