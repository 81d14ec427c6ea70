#!/usr/bin/env bash
# Boots the faxbox init scripts with the real Asterisk under BusyBox init in
# qemu, on Debian's kernel:
#
#   tools/qemu-init/asterisk.sh FAXBOX_BINARY (static, linux/amd64) LAB_ROOT [dahdi]
#   tools/qemu-init/asterisk.sh FAXBOX_BINARY LAB_ROOT dahdi-rx FAX.tif
#   tools/qemu-init/asterisk.sh FAXBOX_BINARY LAB_ROOT e1-rx FAX.tif
#
# The guest's root is the lab's Asterisk chroot (tools/lab, LAB_ROOT),
# shared read-only over virtio-9p with a tmpfs overlay on top, so nothing the
# guest does reaches the host. BusyBox is PID 1; its rcS runs S20dahdi,
# S50asterisk and S95faxbox from services/init. The image's kind of config
# (no token: faxbox firstboot makes one; Asterisk's spool and astdb under
# /var/lib/faxbox) is used. The console (stdout) carries the verdict lines
# FAXBOX-AST-* and the scripts' own output.
#
# With "dahdi", the guest also runs real DAHDI: the kernel modules built for
# Debian's kernel from the chroot's dahdi-source (dahdi-modules.sh), a
# dynamic span of 4 channels on the local loopback driver (dahdi_dynamic_loc,
# no peer) as the box's FXO line group "trunk", dahdi_cfg from S20dahdi and
# chan_dahdi in Asterisk; FAXBOX-AST-DAHDI-* lines report what Asterisk and
# faxbox see of it.
#
# With "dahdi-rx", a fax is received on a DAHDI port: two dynamic loc spans
# with the same key (1:0 and 1:1), which dahdi_dynamic_loc joins to each
# other, its frames carrying the channels' robbed signalling bits. 1:0 is
# the box's FXO line group "trunk" (channels 1-4, fxs_ks), 1:1 the far
# end's FXS ports (channels 5-8, fxo_ks) in the same Asterisk: it rings
# channel 5 (DAHDI/5, which rings channel 1) and sends FAX.tif with SendFAX
# once the box answers (again, up to 3 calls, while the fax fails). faxbox
# records the reception; FAXBOX-AST-RX-* lines
# report it as /v1/inbox shows it (port, status, pages, pdf) and whether its
# PDF is served. The guest runs the host's tiff2pdf and gs (faxbox's PDF and
# its check) from the host's /usr, shared read-only over virtio-9p.
#
# With "e1-rx", a fax is received on an E1 PRI span by its dialled number
# (DID): two dynamic loc spans of 31 channels with the same key, joined to
# each other, both E1 with the D-channel on timeslot 16 (software HDLC in
# DAHDI's core). 1:0 is the box's line group "trunk" (channels 1-31, PRI
# cpe), 1:1 the far end (channels 32-62, PRI net) in the same Asterisk. The
# box receives on inbox.dids 500-599. Once both D-channels are up, the far
# end calls DAHDI/g2/501 and sends FAX.tif (up to 3 calls, as above); then it
# calls 499, which the box refuses (unallocated) without a record.
# FAXBOX-AST-E1-* lines report the spans, the D-channels (pri show spans),
# the record as /v1/inbox shows it and the refused call.
set -euo pipefail
bin=$1
lab=$2
mode=${3:-}
fax=${4:-}
case $mode in
  "" | dahdi) ;;
  dahdi-rx | e1-rx) [ -f "$fax" ] || { echo "qemu-init: $mode needs a fax TIFF" >&2; exit 1; } ;;
  *) echo "qemu-init: unknown mode $mode (dahdi, dahdi-rx, e1-rx)" >&2; exit 1 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
[ -f "$lab/.faxbox-lab-ready" ] || { echo "qemu-init: no lab chroot at $lab (make lab-setup)" >&2; exit 1; }
abi=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: linux-image-//p' | head -1)
[ -f "/boot/vmlinuz-$abi" ] || { echo "qemu-init: no kernel /boot/vmlinuz-$abi (tools/deps.sh)" >&2; exit 1; }
mods=/lib/modules/$abi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ird=$work/initrd
mkdir -p "$ird"/{bin,proc,sys,dev,lower,rw,newroot,modules}
cp /bin/busybox "$ird/bin/busybox"
# The modules for virtio-9p and overlayfs, dependencies first.
order=()
add() {
  local m=$1 path deps d
  path=$(grep -E "(^|/)$m\.ko(\.xz|\.zst)?:" "$mods/modules.dep" | head -1 | cut -d: -f1)
  [ -n "$path" ] || return 0 # built in
  for seen in "${order[@]:-}"; do [ "$seen" = "$path" ] && return 0; done
  deps=$(grep -E "^$path:" "$mods/modules.dep" | cut -d: -f2)
  for d in $deps; do add "$(basename "$d" | sed 's/\.ko.*//')"; done
  order+=("$path")
}
for m in virtio_pci 9pnet_virtio 9p overlay; do add "$m"; done
if [ -n "$mode" ]; then
  dm=$(bash "$here/dahdi-modules.sh" "$lab")
  for k in dahdi dahdi_dynamic dahdi_dynamic_loc dahdi_echocan_mg2; do
    for d in $(modinfo -F depends "$dm/$k.ko" | tr ',' ' '); do
      case $d in dahdi|dahdi_dynamic) ;; *) add "$d" ;; esac
    done
  done
fi
: > "$ird/modules/order"
for p in "${order[@]}"; do
  cp "$mods/$p" "$ird/modules/"
  echo "$(basename "$p")" >> "$ird/modules/order"
done
if [ -n "$mode" ]; then
  for k in dahdi dahdi_dynamic dahdi_dynamic_loc dahdi_echocan_mg2; do
    cp "$dm/$k.ko" "$ird/modules/"
    echo "$k.ko" >> "$ird/modules/order"
  done
fi
cat > "$ird/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
for m in $(/bin/busybox cat /modules/order); do
  /bin/busybox insmod "/modules/$m" || echo "FAXBOX-AST-INSMOD $m failed"
done
/bin/busybox mount -t 9p -o trans=virtio,version=9p2000.L,ro lab /lower || echo "FAXBOX-AST-9P failed"
/bin/busybox mount -t tmpfs -o size=512m rw /rw
/bin/busybox mkdir -p /rw/upper /rw/work
/bin/busybox mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot || echo "FAXBOX-AST-OVERLAY failed"
/bin/busybox cp -a /payload/. /newroot/
if [ -d /newroot/hostusr ]; then
  /bin/busybox mount -t 9p -o trans=virtio,version=9p2000.L,ro hostusr /newroot/hostusr || echo "FAXBOX-AST-9P hostusr failed"
fi
/bin/busybox umount /proc /sys
/bin/busybox mount --move /dev /newroot/dev
exec /bin/busybox switch_root /newroot /bin/busybox init
INIT
chmod +x "$ird/init"
# What the guest's root gets on top of the chroot: busybox, faxbox, the
# init scripts, the image's kind of config.
pay=$ird/payload
# (The chroot is merged-/usr: /bin and /var/run are symlinks there.)
mkdir -p "$pay"/{usr/bin,etc/init.d,etc/faxbox,var/lib/faxbox,var/log,tmp}
cp /bin/busybox "$pay/usr/bin/busybox"
cp "$bin" "$pay/usr/bin/faxbox"
cp "$here"/../../services/init/{S20dahdi,S50asterisk,S95faxbox} "$pay/etc/init.d/"
dahdi_cfg_json=""
if [ "$mode" = dahdi ]; then
  dahdi_cfg_json='"dahdi": {"spans": [{"type": "fxo", "first": 1, "channels": 4, "group": 1, "line_group": "trunk", "dynamic": "loc,1:0"}]},'
  touch "$pay/etc/faxbox/dahdi-test"
fi
hostfs=()
if [ "$mode" = e1-rx ]; then
  dahdi_cfg_json='"dahdi": {"spans": [{"type": "e1", "first": 1, "group": 1, "line_group": "trunk", "dynamic": "loc,1:0", "pri": "cpe"},
    {"type": "e1", "first": 32, "group": 2, "line_group": "farend", "dynamic": "loc,1:1", "pri": "net"}]},
  "inbox": {"dids": ["500-599"]},'
  touch "$pay/etc/faxbox/e1-rx"
  # Run by rcS once the box is up (sourced: BusyBox sh).
  cat > "$pay/etc/faxbox/e1-rx.sh" <<'E1RX'
. /etc/faxbox/rx-lib.sh
ast 'dahdi show status' | grep Dynamic | sed 's/^/FAXBOX-AST-E1-SPAN /'
# The D-channels (Q.921 over timeslot 16 of each span) come up on their own.
for i in $(busybox seq 1 120); do
  [ "$(ast 'pri show spans' | grep -c 'Up, Active')" = 2 ] && break
  sleep 0.5
done
ast 'pri show spans' | grep . | sed 's/^/FAXBOX-AST-E1-PRI /'
idle FAXBOX-AST-E1 30
# The calls' steps (verbose 3: the dialplan's, chan_dahdi's) in a log of their own.
vlog=/var/log/asterisk/e1-test.log
ast "logger add channel $vlog notice,warning,error,verbose(3)" >/dev/null
# The fax to DID 501 over the PRI.
receive FAXBOX-AST-E1 DAHDI/g2/501 "E1 REMOTE"
fields FAXBOX-AST-E1 did port channel caller_id remote_station_id status pages transport pdf
# DID 499 is not in inbox.dids: the box's receive context hangs up
# unanswered (cause 1, unallocated number) and nothing is recorded.
before=$(api '/v1/inbox?limit=100' | grep -o '"id": *"rx_' | busybox wc -l)
from=$(($(busybox wc -l < $vlog) + 1))
farcall e1-test-r DAHDI/g2/499 "E1 REMOTE" FAXBOX-AST-E1
for i in $(busybox seq 1 60); do
  [ -e $spool/outgoing/e1-test-r.call ] || break
  sleep 0.5
done
sleep 5
all=$(api '/v1/inbox?limit=100')
echo "FAXBOX-AST-E1-REFUSED-RECORDS $before $(echo "$all" | grep -o '"id": *"rx_' | busybox wc -l) did499=$(echo "$all" | grep -c '"did": *"499"')"
busybox tail -n +$from $vlog | busybox grep -E '499|hangup|failed|Hangup' | busybox head -20 | sed 's/^/FAXBOX-AST-E1-REFUSED-LOG /'
busybox grep -i -E 'fax|dahdi|pri|span' /var/log/asterisk/messages.log 2>/dev/null | busybox grep -v 499 | busybox tail -40 | sed 's/^/FAXBOX-AST-E1-LOG /'
E1RX
fi
if [ "$mode" = dahdi-rx ]; then
  dahdi_cfg_json='"dahdi": {"spans": [{"type": "fxo", "first": 1, "channels": 4, "group": 1, "line_group": "trunk", "dynamic": "loc,1:0"},
    {"type": "fxs", "first": 5, "channels": 4, "group": 2, "dynamic": "loc,1:1"}]},'
  touch "$pay/etc/faxbox/dahdi-rx"
fi
if [ "$mode" = dahdi-rx ] || [ "$mode" = e1-rx ]; then
  # What both receive tests run in the guest (sourced: BusyBox sh).
  cat > "$pay/etc/faxbox/rx-lib.sh" <<'RXLIB'
ast() { /usr/sbin/asterisk -C /var/lib/faxbox/asterisk/asterisk.conf -rx "$1" 2>/dev/null; }
tok=$(sed -n '/"tokens"/{n;p;}' /var/lib/faxbox/faxbox.json | tr -d ' ",')
api() { busybox wget -q -O - --header "Authorization: Bearer $tok" "http://127.0.0.1:8080$1" 2>/dev/null | busybox tr -d '\n'; }
spool=/var/lib/faxbox/asterisk/spool
# idle PREFIX N: waits until the box's N "trunk" lines are idle.
idle() {
  for i in $(busybox seq 1 100); do
    n=$(api /v1/lines | busybox tr -d ' ' | grep -o '"group":"trunk","index":[0-9]*,"state":"idle"' | busybox wc -l)
    [ "$n" = "$2" ] && break
    sleep 0.2
  done
  echo "$1-IDLE $n"
}
# farcall NAME CHANNEL STATION PREFIX: the far end dials CHANNEL and faxes
# the test TIFF at 9600 (V.29) once answered, as STATION (a call file:
# written beside the spool, then moved in).
farcall() {
  f=$spool/$1.call
  {
    echo "Channel: $2"
    echo 'CallerID: "REMOTE" <0301234567>'
    echo "Setvar: FAXOPT(localstationid)=$3"
    echo 'Setvar: CHANNEL(echocan_mode)=fax'
    echo 'Setvar: FAXOPT(maxrate)=9600'
    echo 'Setvar: FAXOPT(modems)=v27,v29'
    echo 'Application: SendFAX'
    echo 'Data: /usr/share/faxbox-test/fax.tif'
    echo 'WaitTime: 30'
  } > "$f"
  chown asterisk:asterisk "$f"
  mv "$f" $spool/outgoing/ && echo "$4-ORIGINATE $2"
}
# receive PREFIX CHANNEL STATION: the far end faxes through CHANNEL. The
# guest is emulated and DAHDI's software timer runs in bursts when the
# host is busy, so a fax's training fails now and then: like a fax
# machine, the far end tries again, up to 3 calls, until the inbox's
# newest record is received. Sets rx (the record) and id.
receive() {
  last=""
  for a in 1 2 3; do
    farcall "rx-test-$a" "$2" "$3" "$1"
    for i in $(busybox seq 1 160); do
      rx=$(api '/v1/inbox?limit=1')
      id=$(echo "$rx" | grep -o '"id": *"rx_[^"]*"' | head -1 | cut -d'"' -f4)
      [ -n "$id" ] && [ "$id" != "$last" ] && break
      sleep 0.5
    done
    last=$id
    echo "$1-CALL $a $(echo "$rx" | grep -o '"status": *"[a-z]*"' | head -1)"
    echo "$rx" | grep -q '"status": *"received"' && break
    sleep 2
  done
  echo "$1-INBOX $rx"
}
# fields PREFIX FIELD...: a line per field of the record rx,
# PREFIX-<FIELD> <value>, then the first bytes of its document.
fields() {
  p=$1
  shift
  for f in "$@"; do
    v=$(echo "$rx" | grep -o "\"$f\": *[^,}]*" | head -1 | cut -d: -f2- | sed 's/^ *//; s/"//g')
    echo "$p-$(echo "$f" | busybox tr a-z_ A-Z-) $v"
  done
  echo "$p-DOCUMENT $(api "/v1/inbox/$id/document" | busybox head -c 5)"
}
RXLIB
  mkdir -p "$pay/usr/share/faxbox-test" "$pay/hostusr"
  install -m 0644 "$fax" "$pay/usr/share/faxbox-test/fax.tif"
  # The host's tiff2pdf and gs, run by the host's loader with its libraries.
  gsver=$(gs --version)
  for b in tiff2pdf gs; do
    cat > "$pay/usr/bin/$b" <<WRAP
#!/bin/sh
h=/hostusr
export GS_LIB=\$h/share/ghostscript/$gsver/Resource/Init:\$h/share/ghostscript/$gsver/lib:\$h/share/ghostscript/$gsver/Resource/Font:\$h/share/ghostscript/fonts
exec \$h/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 --library-path \$h/lib/x86_64-linux-gnu \$h/bin/$b "\$@"
WRAP
    chmod 0755 "$pay/usr/bin/$b"
  done
  hostfs=(-virtfs "local,path=/usr,mount_tag=hostusr,security_model=passthrough,readonly=on")
fi
cat > "$pay/etc/faxbox/faxbox.json" <<JSON
{
  $dahdi_cfg_json
  "listen": "127.0.0.1:8080",
  "data_dir": "/var/lib/faxbox",
  "limits": {"min_free_bytes": 0},
  "line_groups": [{"name": "sip", "channels": 2, "dial": "PJSIP/%s@trunk"}],
  "asterisk": {
    "ami_addr": "127.0.0.1:5038",
    "user": "asterisk",
    "spool_dir": "/var/lib/faxbox/asterisk/spool",
    "db_dir": "/var/lib/faxbox/asterisk/db",
    "log_dir": "/var/log/asterisk",
    "run_dir": "/var/run/asterisk"
  }
}
JSON
cat > "$pay/etc/inittab" <<'TAB'
::sysinit:/etc/init.d/rcS
::shutdown:/etc/init.d/rcK
TAB
cat > "$pay/etc/init.d/rcS" <<'RCS'
#!/bin/busybox sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp
# As Buildroot's skeleton fstab does (dahdi_cfg's semaphore lives there).
mkdir -p /dev/shm /dev/pts
mount -t tmpfs -o mode=1777 shm /dev/shm
mkdir -p /var/run /var/log
busybox ip link set lo up
for s in /etc/init.d/S??*; do "$s" start; done
ok=no
for i in $(busybox seq 1 100); do
  if busybox wget -q -O - http://127.0.0.1:8080/healthz 2>/dev/null | grep -q '"ok"'; then ok=yes; break; fi
  sleep 0.2
done
echo "FAXBOX-AST-HEALTHZ $ok"
conn=no
for i in $(busybox seq 1 100); do
  if /usr/sbin/asterisk -C /var/lib/faxbox/asterisk/asterisk.conf -rx 'manager show connected' 2>/dev/null | grep -q faxbox; then conn=yes; break; fi
  sleep 0.2
done
echo "FAXBOX-AST-AMI-CONNECTED $conn"
echo "FAXBOX-AST-USER $(busybox ps -o user,comm | busybox awk '$2 == "asterisk" {print $1; exit}')"
tok=$(sed -n '/"tokens"/{n;p;}' /var/lib/faxbox/faxbox.json | tr -d ' ",')
echo "FAXBOX-AST-ALARMS $(busybox wget -q -O - --header "Authorization: Bearer $tok" http://127.0.0.1:8080/v1/status 2>/dev/null | busybox tr -d '\n' | grep -o '"alarms": *\[[^]]*]')"
echo "FAXBOX-AST-FAXMOD $(/usr/sbin/asterisk -C /var/lib/faxbox/asterisk/asterisk.conf -rx 'module show like res_fax_spandsp' 2>/dev/null | grep -c 'res_fax_spandsp.so')"
if [ -f /etc/faxbox/dahdi-test ]; then
  ast() { /usr/sbin/asterisk -C /var/lib/faxbox/asterisk/asterisk.conf -rx "$1" 2>/dev/null; }
  echo "FAXBOX-AST-DAHDI-SPANS $(busybox ls /sys/bus/dahdi_spans/devices 2>/dev/null | busybox wc -l)"
  ast 'dahdi show status' | sed 's/^/FAXBOX-AST-DAHDI-STATUS /'
  echo "FAXBOX-AST-DAHDI-CHANNELS $(ast 'dahdi show channels' | grep -c faxbox-receive)"
  tok=$(sed -n '/"tokens"/{n;p;}' /var/lib/faxbox/faxbox.json | tr -d ' ",')
  for i in $(busybox seq 1 50); do
    down=$(busybox wget -q -O - --header "Authorization: Bearer $tok" http://127.0.0.1:8080/v1/lines 2>/dev/null | busybox tr -d ' \n' | grep -o '"group":"trunk","index":[0-9],"state":"down"' | busybox wc -l)
    [ "$down" = 4 ] && break
    sleep 0.2
  done
  echo "FAXBOX-AST-DAHDI-DOWN $down"
  busybox wget -q -O - --header "Authorization: Bearer $tok" http://127.0.0.1:8080/v1/status 2>/dev/null | busybox tr -d '\n' | grep -o '"dahdi_alarms": *\[[^]]*]' | sed 's/^/FAXBOX-AST-DAHDI-ALARMS /'
fi
if [ -f /etc/faxbox/dahdi-rx ]; then
  . /etc/faxbox/rx-lib.sh
  ast 'dahdi show status' | grep Dynamic | sed 's/^/FAXBOX-AST-RX-SPAN /'
  idle FAXBOX-AST-RX 4
  # The far end: channel 5 rings the box's channel 1.
  receive FAXBOX-AST-RX DAHDI/5 "DAHDI REMOTE"
  fields FAXBOX-AST-RX port channel caller_id remote_station_id status pages pdf
  busybox grep -i -E 'fax|dahdi' /var/log/asterisk/messages.log 2>/dev/null | busybox tail -40 | sed 's/^/FAXBOX-AST-RX-LOG /'
fi
if [ -f /etc/faxbox/e1-rx ]; then
  . /etc/faxbox/e1-rx.sh
fi
/etc/init.d/S50asterisk status
/etc/init.d/S95faxbox status
busybox poweroff
RCS
cat > "$pay/etc/init.d/rcK" <<'RCK'
#!/bin/busybox sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
for s in $(busybox ls -r /etc/init.d/S??*); do "$s" stop && echo "FAXBOX-AST-STOP $s ok" || echo "FAXBOX-AST-STOP $s fail"; done
left=$(busybox ps -o comm | grep -c -x -e asterisk -e faxbox)
echo "FAXBOX-AST-LEFT $left"
echo "--- faxbox log"
busybox tail -5 /var/log/faxbox.log
echo "--- end"
RCK
chmod +x "$pay"/etc/init.d/*
(cd "$ird" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$work/initrd.gz"
limit=300
[ "$mode" = e1-rx ] && limit=480
timeout $limit qemu-system-x86_64 -m 1024 -smp 2 -nic none -nographic -no-reboot \
  -kernel "/boot/vmlinuz-$abi" -initrd "$work/initrd.gz" \
  -virtfs "local,path=$lab,mount_tag=lab,security_model=passthrough,readonly=on" "${hostfs[@]}" \
  -append "console=ttyS0 quiet panic=-1" </dev/null
