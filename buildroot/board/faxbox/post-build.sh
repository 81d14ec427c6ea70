#!/bin/sh
# Mount the data partition at /var/lib/faxbox and install the default config.
set -e
TARGET_DIR=$1
mkdir -p "$TARGET_DIR/var/lib/faxbox" "$TARGET_DIR/etc/faxbox"
grep -q faxbox-data "$TARGET_DIR/etc/fstab" ||
	echo "LABEL=faxbox-data /var/lib/faxbox ext4 defaults,noatime 0 2" >> "$TARGET_DIR/etc/fstab"
[ -f "$TARGET_DIR/etc/faxbox/faxbox.json" ] ||
	printf '{"listen": "0.0.0.0:8080", "data_dir": "/var/lib/faxbox"}\n' > "$TARGET_DIR/etc/faxbox/faxbox.json"
