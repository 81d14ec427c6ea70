#!/bin/sh
# Mounts the data partition at /var/lib/faxbox and installs the image's
# default config. It has no API token and no AMI secret: the first start
# makes the box's own config on the data partition with fresh ones
# (faxbox firstboot, from the init scripts). Asterisk's writable state
# (spool, astdb) lives on the data partition too: the root is read-only.
set -e
TARGET_DIR=$1
mkdir -p "$TARGET_DIR/var/lib/faxbox" "$TARGET_DIR/etc/faxbox"
grep -q faxbox-data "$TARGET_DIR/etc/fstab" ||
	echo "LABEL=faxbox-data /var/lib/faxbox ext4 defaults,noatime 0 2" >> "$TARGET_DIR/etc/fstab"
board=""
grep -q '^BR2_x86_64=y' "${BR2_CONFIG:-/dev/null}" && board='"panel": {"board": "pc-x86"},'
[ -f "$TARGET_DIR/etc/faxbox/faxbox.json" ] || cat > "$TARGET_DIR/etc/faxbox/faxbox.json" <<JSON
{
  "listen": "0.0.0.0:8080",
  "data_dir": "/var/lib/faxbox",
  $board
  "asterisk": {
    "ami_addr": "127.0.0.1:5038",
    "user": "asterisk",
    "spool_dir": "/var/lib/faxbox/asterisk/spool",
    "db_dir": "/var/lib/faxbox/asterisk/db",
    "lib_dir": "/var/lib/asterisk",
    "data_dir": "/var/lib/asterisk",
    "mod_dir": "/usr/lib/asterisk/modules",
    "log_dir": "/var/log/asterisk",
    "run_dir": "/var/run/asterisk"
  }
}
JSON
