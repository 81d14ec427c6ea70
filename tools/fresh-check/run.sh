#!/usr/bin/env bash
# fresh-check: proves the README's `make run` on a fresh Debian 12 machine.
#
#   tools/fresh-check/run.sh        (as root; `make fresh-check`)
#
# 1. A clean Debian 12 (bookworm) root is made with debootstrap (minbase,
#    plus make, the README's other prerequisite) from the Debian mirror in
#    this machine's apt configuration.
# 2. This repository's files (tracked and untracked but not ignored: the
#    working tree as a commit of it would be) are copied in, the Go toolchain
#    (GOROOT of $GO, normally /usr/local/go) is bind-mounted read-only at
#    /usr/local/go.
# 3. In a private mount and PID namespace, with proc, sys and dev mounted,
#    `make run` runs chrooted in that root: it installs the run packages,
#    builds faxbox, builds the lab's sid chroot inside the fresh root (nested)
#    and starts the box on its Asterisk.
# 4. A one-page text fax to the lab's number 100 is submitted with curl and
#    polled (GET /v1/faxes/{id}) until it is delivered.
#
# It prints the time from the fresh root to the first delivered fax, with
# the milestones of `make run`, and on failure the log's tail. Teardown runs
# on every exit: the namespaces' processes are killed (so their mounts go),
# leftover mounts are unmounted, the root is removed.
#
# The machine's /etc/resolv.conf and local CAs (/usr/local/share/
# ca-certificates) are copied in. Environment: GO (go), GOPROXY, GOFLAGS,
# GOSUMDB, GONOSUMDB, GOPRIVATE, GONOPROXY, GOTOOLCHAIN and
# http(s)_proxy/no_proxy pass through; FRESH_CHECK_MODCACHE: host module
# cache bind-mounted read-write into the root (default: `go env GOMODCACHE`;
# "off" for none: modules come from GOPROXY, as on a fresh machine);
# FRESH_CHECK_DIR: work directory (default /var/tmp);
# FRESH_CHECK_LISTEN (127.0.0.1:23990) and FRESH_CHECK_LAB_PORT (23060; the
# lab takes 500 ports from it): addresses that must be free on this host
# (the fresh root shares its network); FRESH_CHECK_TIMEOUT: seconds for
# `make run` to serve and for the fax to be delivered, each (900);
# FRESH_CHECK_KEEP=1 keeps the root for a look.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
listen=${FRESH_CHECK_LISTEN:-127.0.0.1:23990}
labport=${FRESH_CHECK_LAB_PORT:-23060}
timeout=${FRESH_CHECK_TIMEOUT:-900}
suite=bookworm

say() { echo "fresh-check: $*" >&2; }
die() { say "FAILED: $*"; exit 1; }
now() { local t=${EPOCHREALTIME/./}; echo "${t:0:13}"; } # milliseconds
secs() { printf '%d.%01ds' $(($1 / 1000)) $((($1 % 1000) / 100)); }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, mount)"
for c in debootstrap unshare chroot mount umount curl git apt-get; do
  command -v "$c" >/dev/null || die "$c not found (make deps-test installs what the checks need)"
done
goroot=$("${GO:-go}" env GOROOT) || die "no Go toolchain (${GO:-go} env GOROOT)"
[ -x "$goroot/bin/go" ] || die "no go binary in $goroot"
modcache=${FRESH_CHECK_MODCACHE:-$("${GO:-go}" env GOMODCACHE)}
[ "$modcache" = off ] || mkdir -p "$modcache"
mirror=$(apt-get indextargets --format '$(REPO_URI)' 'Origin: Debian' | grep -v security | sort -u | head -1)
[ -n "$mirror" ] || die "no Debian mirror in apt's configuration (apt-get indextargets; run apt-get update)"

# port_busy reports whether a TCP listener or UDP socket holds a port in
# [$1, $2] on this host.
port_busy() {
  local f sl addr rem st rest p
  for f in /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6; do
    while read -r sl addr rem st rest; do
      [ "$sl" != sl ] || continue
      p=$((16#${addr##*:}))
      [ "$p" -ge "$1" ] && [ "$p" -le "$2" ] && { [[ $f == *udp* ]] || [ "$st" = 0A ]; } && return 0
    done <"$f"
  done
  return 1
}
port_busy "${listen##*:}" "${listen##*:}" && die "$listen is in use (set FRESH_CHECK_LISTEN)"
port_busy "$labport" $((labport + 499)) && die "ports $labport-$((labport + 499)) are in use (set FRESH_CHECK_LAB_PORT)"

work=$(mktemp -d "${FRESH_CHECK_DIR:-/var/tmp}/faxbox-fresh-check.XXXXXX")
root=$work/root
log=$work/make-run.log
upid=""

# mounts_under prints the host's mount points under the work directory.
mounts_under() { awk -v w="$work" '$2 == w || index($2, w "/") == 1 { print $2 }' /proc/self/mounts; }

# procs_in prints the processes whose root directory is in the fresh root.
procs_in() {
  local p r
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    case $r in "$root" | "$root"/*) echo "${p#/proc/}" ;; esac
  done
}

teardown() {
  local rc=$? i
  trap - EXIT INT TERM
  if [ -n "$upid" ]; then
    # unshare ignores SIGTERM while it waits; its death SIGKILLs the PID
    # namespace's init (--kill-child), and with it every process inside.
    kill -KILL "$upid" 2>/dev/null || true
    wait "$upid" 2>/dev/null || true
  fi
  for i in $(seq 1 50); do [ -z "$(procs_in)" ] && break; sleep 0.2; done
  [ -z "$(procs_in)" ] || { say "processes still in $root: $(procs_in | tr '\n' ' ')"; rc=1; }
  mounts_under | sort -r | while read -r m; do umount -l "$m" || true; done
  if [ -n "$(mounts_under)" ]; then
    say "still mounted, $work left in place: $(mounts_under | tr '\n' ' ')"
    rc=1
  elif [ "${FRESH_CHECK_KEEP:-}" = 1 ]; then
    say "kept $work"
  else
    rm -rf --one-file-system "$work"
  fi
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

# fail prints the log's tail (and the lab's) and exits.
fail() {
  say "FAILED: $*"
  echo "---- last lines of make run ($log) ----" >&2
  tail -n 60 "$log" >&2 || true
  if [ -s "$root/src/.run/lab.log" ]; then
    echo "---- last lines of the lab ($root/src/.run/lab.log) ----" >&2
    tail -n 30 "$root/src/.run/lab.log" >&2
  fi
  exit 1
}

# Step 1: the fresh Debian 12 root.
t0=$(now)
say "debootstrap $suite (minbase + make) into $root from $mirror"
debootstrap --variant=minbase --include=make "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap $suite"; }
# The machine's network setup comes along: its resolver, and its local CAs
# (a TLS-intercepting proxy's), which the root's ca-certificates, once
# `make run` installs it, adds to the trusted ones.
cp /etc/resolv.conf "$root/etc/resolv.conf"
if [ -d /usr/local/share/ca-certificates ]; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
fi

# Step 2: the repository and Go.
mkdir -p "$root/src" "$root/usr/local/go" "$root/root/go/pkg/mod"
# files lists the working tree's files that a commit of it would hold.
files() {
  local f
  git -C "$top" ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
    [ ! -e "$top/$f" ] || printf '%s\0' "$f"
  done
}
files | tar -C "$top" --null -T - -cf - | tar -C "$root/src" -xf -
t1=$(now)
say "fresh root ready in $(secs $((t1 - t0)))"

# Step 3: `make run` in the root. stamp prefixes each line with the seconds
# since the fresh root was ready.
stamp() { local l; while IFS= read -r l; do printf '%7s %s\n' "$(secs $(($(now) - t1)))" "$l"; done; }
tok=fresh-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
envs=(PATH=/usr/local/go/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "FAXBOX_TOKEN=$tok")
for v in GOPROXY GOFLAGS GOSUMDB GONOSUMDB GOPRIVATE GONOPROXY GOTOOLCHAIN http_proxy https_proxy no_proxy; do
  [ -z "${!v:-}" ] || envs+=("$v=${!v}")
done
inner='set -e
mount -t proc proc "$1/proc"
mount -t sysfs sys "$1/sys"
mount --rbind /dev "$1/dev"
mount --bind "$2" "$1/usr/local/go"
mount -o remount,bind,ro "$1/usr/local/go"
[ "$3" = off ] || mount --bind "$3" "$1/root/go/pkg/mod"
r=$1; shift 3
exec chroot "$r" /usr/bin/env -i "$@"'
unshare --mount --propagation private --pid --fork --kill-child \
  bash -c "$inner" fresh "$root" "$goroot" "$modcache" "${envs[@]}" \
  bash -c "cd /src && exec make run LISTEN=$listen LAB_BASE_PORT=$labport" \
  > >(stamp >"$log") 2>&1 </dev/null &
upid=$!
say "make run in the fresh root (log: $log)"

base=http://$listen
served=""
for _ in $(seq 1 $((timeout * 2))); do
  kill -0 "$upid" 2>/dev/null || fail "make run ended before the box answered"
  if curl -fsS -m 2 "$base/healthz" >/dev/null 2>&1; then served=$(now); break; fi
  sleep 0.5
done
[ -n "$served" ] || fail "no answer from $base/healthz after ${timeout}s"
say "box serving after $(secs $((served - t1)))"

# Step 4: a fax to the lab's 100, until delivered.
printf 'faxbox fresh-check\n\nA one-page letter sent by the fresh-check of %s.\n' "$(date -u)" >"$work/letter.txt"
hdr=$(curl -sS -m 30 -o "$work/submit.json" -D - -w '%{http_code}' -H "Authorization: Bearer $tok" \
  -F to=100 -F "file=@$work/letter.txt" "$base/v1/faxes") || fail "POST /v1/faxes"
id=$(echo "$hdr" | tr -d '\r' | sed -n 's|^[Ll]ocation: */v1/faxes/||p' | head -1)
[ "${hdr: -3}" = 202 ] && [ -n "$id" ] || fail "POST /v1/faxes answered $(tail -c 3 <<<"$hdr"): $(cat "$work/submit.json")"
submitted=$(now)
say "fax $id submitted"
status=""
for _ in $(seq 1 "$timeout"); do
  kill -0 "$upid" 2>/dev/null || fail "make run ended while fax $id was $status"
  body=$(curl -fsS -m 10 -H "Authorization: Bearer $tok" "$base/v1/faxes/$id") || fail "GET /v1/faxes/$id"
  status=$(echo "$body" | tr -d '\n' | grep -o '"status": *"[a-z_]*"' | head -1 | sed 's/.*"\([a-z_]*\)"$/\1/')
  case $status in
  delivered) break ;;
  failed | cancelled) fail "fax $id $status: $body" ;;
  esac
  sleep 1
done
[ "$status" = delivered ] || fail "fax $id still $status after ${timeout}s"
t2=$(now)

say "milestones of make run (seconds since the fresh root was ready):"
grep -E 'deps: (refreshing|installing)|go build|lab: (debootstrap|installing|chroot ready)|lab running|faxbox on ' "$log" |
  cut -c1-160 | sed 's/^/    /' >&2 || true
grep '^lab: ' "$root/src/.run/lab.log" | cut -c1-160 | sed 's/^/      (lab.log) /' >&2 || true
say "fax $id delivered $(secs $((t2 - submitted))) after submission"
say "fresh Debian 12 root: $(secs $((t1 - t0))) (debootstrap, repository, Go)"
echo "fresh-check: OK: fresh Debian 12 machine to the first delivered fax: $(secs $((t2 - t1)))" \
  "(make run until serving $(secs $((served - t1))), fax $(secs $((t2 - served)))); with the root itself: $(secs $((t2 - t0)))"
