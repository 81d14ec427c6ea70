//go:build lab

package buildroot

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestPCImageLayoutBoots builds the pc_x86_64 disk with the real genimage
// from the board's genimage.cfg, grub.cfg and post-image.sh (on stand-in
// inputs: tools/qemu-image) and boots it under UEFI in qemu: the EFI
// partition holds GRUB and the kernel, GRUB reads faxbox's grub.cfg and
// starts the kernel with the root partition's PARTUUID, and the data
// partition is an empty ext4 labelled faxbox-data. (Debian's kernel, the
// stand-in, has no built-in squashfs, so the boot is followed up to the
// kernel waiting for that root partition.)
func TestPCImageLayoutBoots(t *testing.T) {
	out := t.TempDir()
	cmd := exec.Command("bash", "../tools/qemu-image/run.sh", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tools/qemu-image: %v\n%s", err, b)
	}
	uuid := regexp.MustCompile(`partition root \{[^}]*partition-uuid = ([0-9a-f-]{36})`).FindStringSubmatch(read(t, "board/faxbox/pc-x86_64/genimage.cfg"))[1]

	var pt struct {
		PartitionTable struct {
			Label      string `json:"label"`
			Partitions []struct {
				Type, UUID, Name, Attrs string
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal([]byte(read(t, filepath.Join(out, "sfdisk.json"))), &pt); err != nil {
		t.Fatal(err)
	}
	ps := pt.PartitionTable.Partitions
	if pt.PartitionTable.Label != "gpt" || len(ps) != 3 {
		t.Fatalf("partition table: %+v", pt)
	}
	if ps[0].Name != "boot" || ps[0].Type != "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" {
		t.Errorf("partition 1 is not the EFI system partition: %+v", ps[0])
	}
	if ps[1].Name != "root" || !strings.EqualFold(ps[1].UUID, uuid) {
		t.Errorf("partition 2 is not the root %s: %+v", uuid, ps[1])
	}
	if ps[2].Name != "data" {
		t.Errorf("partition 3 is not data: %+v", ps[2])
	}
	efi := read(t, filepath.Join(out, "efi.txt"))
	for _, want := range []string{"bzImage", "bootx64  efi", "grub     cfg", "root=PARTUUID=" + uuid} {
		if !strings.Contains(efi, want) {
			t.Errorf("the EFI partition lacks %q:\n%s", want, efi)
		}
	}
	data := read(t, filepath.Join(out, "data.txt"))
	if !strings.Contains(data, "LABEL=faxbox-data") || !strings.Contains(data, "TYPE=ext4") || !strings.Contains(data, "lost+found") || strings.Contains(data, "sbin") {
		t.Errorf("data partition: want an empty ext4 labelled faxbox-data:\n%s", data)
	}
	console := read(t, filepath.Join(out, "console.log"))
	for _, want := range []string{"Command line: BOOT_IMAGE=/bzImage root=PARTUUID=" + uuid + " rootfstype=squashfs ro", "Waiting for root device PARTUUID=" + uuid} {
		if !strings.Contains(console, want) {
			t.Errorf("the boot did not show %q", want)
		}
	}
	if t.Failed() {
		b, _ := os.ReadFile(filepath.Join(out, "console.log"))
		t.Logf("console (tail):\n%s", b[max(0, len(b)-3000):])
	}
}
