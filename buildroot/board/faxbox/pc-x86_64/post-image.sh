#!/bin/sh
# Post-image script of faxbox_pc_x86_64: puts faxbox's grub.cfg next to
# GRUB's EFI binary (Buildroot's grub2 writes efi-part/EFI/BOOT/bootx64.efi)
# and builds disk.img with genimage.
set -e
BOARD_DIR=$(dirname "$0")
mkdir -p "$BINARIES_DIR/efi-part/EFI/BOOT"
cp -f "$BOARD_DIR/grub.cfg" "$BINARIES_DIR/efi-part/EFI/BOOT/grub.cfg"
exec support/scripts/genimage.sh -c "$BOARD_DIR/genimage.cfg"
