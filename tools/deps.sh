#!/usr/bin/env bash
# Installs the Debian 12 packages faxbox needs (idempotent), before anything
# uses them, so no two tests run apt at once. Fails loudly when a package
# cannot be installed.
#
#   tools/deps.sh run    what `make run` needs: the box's own tools
#                        (ghostscript, tiff2pdf, prlimit, espeak-ng, sox),
#                        CA certificates for https webhooks, and debootstrap
#                        for the lab's Asterisk chroot
#   tools/deps.sh test   run, plus what only the tests use (chromium, qemu,
#                        OVMF, GRUB, genimage, a Debian kernel image with its
#                        headers and source for the qemu guests, tshark
#                        and dumpcap for the media capture checks, ...)
#
# Nothing is built for or installed into the host's running kernel: DAHDI's
# tools (dahdi_cfg) live in the lab's chroot, not on the host.
#
# apt's package lists are refreshed before anything is installed and before
# any version is decided (the test kernel's ABI comes from the fresh lists),
# so stale lists never name a package the mirror no longer has. When
# everything is installed already, apt is not run at all.
set -euo pipefail
mode=${1:-test}
case $mode in run | test) ;; *) echo "usage: tools/deps.sh run|test" >&2; exit 2 ;; esac
sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-o DPkg::Lock::Timeout=600 -y -qq)

run_pkgs=(ghostscript libtiff-tools util-linux espeak-ng sox libsox-fmt-mp3 ca-certificates debootstrap)
run_cmds=(gs tiffinfo tiff2pdf tiffcp prlimit espeak-ng sox debootstrap chroot mount)
test_pkgs=(poppler-utils chromium genimage grub-efi-amd64-bin squashfs-tools mtools dosfstools ovmf e2fsprogs fdisk
  qemu-system-x86 busybox-static cpio xz-utils make gcc git curl tshark
  cups cups-ipp-utils # cups: a real cupsd queue printing to the box over IPP; cups-ipp-utils: ipptool
  postfix swaks # postfix: the real relay of the mail tests (private instances); swaks: the SMTP client sending mail to fax
  slapd ldap-utils # slapd: the real directory of the LDAP tests (private instances; its default database is not used); ldap-utils: ldapadd
  prosody # prosody: the real XMPP server of the notification tests (private instances on a free port; its service is not used)
  radicale # radicale: the real CalDAV server of the calendar tests (private instances on a free port; its service is not used)
  avahi-daemon iproute2 # avahi-daemon: the real mDNS responder of the DNS-SD test (a private instance in its own network and mount namespaces; its service is not used); iproute2: that namespace's veth pair
  nftables) # nftables: the lab's impairing media relay drops the remote's media sent around it (faxbox-lab up -relay, the media impairment tests)
test_cmds=(pdfinfo chromium qemu-system-x86_64 unshare genimage grub-mkimage mksquashfs sfdisk mkfs.vfat mcopy mdir
  mke2fs debugfs blkid busybox cpio xz make gcc git curl tshark dumpcap cupsd lpadmin lp lpstat ipptool
  postfix swaks slapd ldapadd radicale prosody prosodyctl nft avahi-daemon ip)

# abi prints the kernel ABI Debian's linux-image-amd64 currently depends on
# (from apt's lists; empty when the lists do not know it).
abi() { apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: linux-image-//p' | head -1; }

# kernel_pkgs prints the test kernel's packages for ABI $1.
kernel_pkgs() { echo "linux-image-$1" "linux-headers-$1" "linux-source-$(echo "$1" | cut -d. -f1,2)"; }

# kernel_set prints the test kernel's packages for the ABI the current
# lists name.
kernel_set() {
  local a; a=$(abi)
  if [ -n "$a" ]; then kernel_pkgs "$a"; else echo linux-image-amd64; fi
}

# missing prints the packages of its arguments that are not installed.
missing() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

# apt_install installs the missing ones of its arguments; further apt-get
# options come first, before "--".
apt_install() {
  local opts=() need
  while [ "$1" != -- ]; do opts+=("$1"); shift; done; shift
  need=$(missing "$@" | tr '\n' ' ')
  [ -n "$need" ] || return 0
  echo "deps: installing $need" >&2
  # shellcheck disable=SC2086 # $need is a list of package names
  $sudo env INITRD="${INITRD:-}" apt-get install "${apt_opts[@]}" "${opts[@]}" $need >/dev/null
}

todo=$(missing "${run_pkgs[@]}")
# shellcheck disable=SC2046 # one word per package
[ "$mode" = run ] || todo+=$(missing "${test_pkgs[@]}" $(kernel_set))
if [ -n "$todo" ]; then
  echo "deps: refreshing apt's package lists" >&2
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
  # The box's tools need none of their Recommends; the test tools (qemu,
  # GRUB, ...) are installed as Debian recommends them. The test kernel
  # only boots qemu guests, each with its own initrd: no Recommends
  # (firmware, apparmor) and no initramfs built for it (INITRD=No).
  apt_install --no-install-recommends -- "${run_pkgs[@]}"
  if [ "$mode" = test ]; then
    [ -n "$(abi)" ] || { echo "deps: cannot tell Debian's kernel ABI (apt-cache depends linux-image-amd64)" >&2; exit 1; }
    # postfix is a test relay only (the mail tests start private instances
    # with their own config directories): Debian's "No configuration"
    # leaves the system's own instance unconfigured and stopped.
    echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
    apt_install -- "${test_pkgs[@]}"
    # shellcheck disable=SC2046 # one word per package
    INITRD=No apt_install --no-install-recommends -- $(kernel_set)
  fi
fi

cmds=("${run_cmds[@]}")
[ "$mode" = run ] || cmds+=("${test_cmds[@]}")
for c in "${cmds[@]}"; do
  command -v "$c" >/dev/null || { echo "deps: $c not found after install" >&2; exit 1; }
done
if [ "$mode" = test ]; then
  a=$(abi); major=$(echo "$a" | cut -d. -f1,2)
  [ -f "/boot/vmlinuz-$a" ] && [ -f "/usr/src/linux-source-$major.tar.xz" ] && [ -d "/usr/src/linux-headers-$a" ] ||
    { echo "deps: kernel image, headers or source for $a missing" >&2; exit 1; }
fi
