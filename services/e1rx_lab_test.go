//go:build lab

package services_test

import (
	"regexp"
	"testing"
)

// TestE1ReceiveInQemu receives a fax on an E1 PRI span by its dialled
// number in the qemu guest (tools/qemu-init/asterisk.sh … e1-rx): two
// dynamic spans of 31 channels on the local loopback driver with the same
// key, joined to each other, both rendered by faxbox as E1 (B-channels
// 1-15 and 17-31, the D-channel on timeslot 16 in DAHDI's software HDLC).
// One is the box's line group "trunk" on the PRI's cpe side, the other the
// far end on the net side in the same Asterisk. The box receives on
// inbox.dids 500-599. The far end calls DAHDI/g2/501 and sends a 2-page
// TIFF-F (faxbox's converter, real ghostscript) with SendFAX at 9600 (up
// to 3 calls, as the emulated guest's timer makes a training fail now and
// then); faxbox records the reception with its DID, makes and checks its
// PDF and serves it. Then the far end calls 499, outside inbox.dids: the
// box's receive context hangs up unanswered and nothing is recorded.
// (The far end's station id is not checked: on the emulated guest the
// T.30 frame carrying it is lost now and then in a fax that succeeds.)
func TestE1ReceiveInQemu(t *testing.T) {
	console := bootReceive(t, "e1-rx", "FAXBOX-AST-E1")
	// Both D-channels up: Q.921 established between the cpe and net sides.
	for _, span := range []string{"1", "2"} {
		if !regexp.MustCompile(`FAXBOX-AST-E1-PRI PRI span ` + span + `/0: Up, Active\n`).MatchString(console) {
			t.Errorf("the D-channel of span %s is not up", span)
		}
	}
	// The refused DID: the box got the call on its PRI and hung it up
	// unanswered (Hangup(1)), and the inbox kept the same records, none for 499.
	m := regexp.MustCompile(`FAXBOX-AST-E1-REFUSED-RECORDS (\d+) (\d+) did499=(\d+)\n`).FindStringSubmatch(console)
	if m == nil || m[1] == "0" || m[1] != m[2] || m[3] != "0" {
		t.Errorf("the call to 499 changed the inbox (records before, after, for 499): %v", m)
	}
	if !regexp.MustCompile(`FAXBOX-AST-E1-REFUSED-LOG .*Executing \[499@faxbox-receive:1\] Hangup\("DAHDI/i1/[^"]*", "1"\)`).MatchString(console) {
		t.Errorf("the box's receive context did not hang up the call to 499 as unallocated")
	}
	wantConsole(t, console, "Starting dahdi: OK", "FAXBOX-AST-AMI-CONNECTED yes", "FAXBOX-AST-E1-IDLE 30\n",
		"FAXBOX-AST-E1-ORIGINATE DAHDI/g2/501", "FAXBOX-AST-E1-ORIGINATE DAHDI/g2/499",
		"FAXBOX-AST-E1-DID 501\n", "FAXBOX-AST-E1-CALLER-ID 0301234567\n", "FAXBOX-AST-E1-CHANNEL DAHDI/i1/",
		"FAXBOX-AST-E1-STATUS received\n", "FAXBOX-AST-E1-PAGES 2\n",
		"FAXBOX-AST-E1-TRANSPORT g711\n", "FAXBOX-AST-E1-PDF true\n", "FAXBOX-AST-E1-DOCUMENT %PDF-",
		"FAXBOX-AST-STOP /etc/init.d/S20dahdi ok", "FAXBOX-AST-LEFT 0")
}
