//go:build lab

package services_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/faxbox/faxbox/firmware/convert"
	"github.com/faxbox/faxbox/internal/testkit"
	"github.com/faxbox/faxbox/tools/lab"
)

// TestDAHDIReceiveInQemu receives a fax on a DAHDI port in the qemu guest
// (tools/qemu-init/asterisk.sh … dahdi-rx): two dynamic spans on the local
// loopback driver with the same key, which dahdi_dynamic_loc joins to each
// other (their frames carry the channels' signalling bits). One is the
// box's FXO line group "trunk" (channels 1-4, fxs_ks), the other the far
// end's FXS ports (channels 5-8, fxo_ks) in the same Asterisk, which rings
// DAHDI/5 — channel 1 rings — and sends a 2-page TIFF-F (made by faxbox's
// converter, real ghostscript) with SendFAX at 9600 once the box's receive
// context answers (up to 3 calls: the emulated guest's DAHDI timer runs in
// bursts on a busy host, and a fax's training fails now and then). faxbox
// records the reception with the DAHDI channel as its port, makes and
// checks its PDF, and serves it.
func TestDAHDIReceiveInQemu(t *testing.T) {
	console := bootReceive(t, "dahdi-rx", "FAXBOX-AST-RX")
	// The box's 4 lines are idle.
	wantConsole(t, console, "Starting dahdi: OK", "FAXBOX-AST-AMI-CONNECTED yes", "FAXBOX-AST-RX-IDLE 4", "FAXBOX-AST-RX-ORIGINATE DAHDI/5",
		"FAXBOX-AST-RX-PORT 1\n", "FAXBOX-AST-RX-CHANNEL DAHDI/1-1\n",
		"FAXBOX-AST-RX-REMOTE-STATION-ID DAHDI REMOTE\n", "FAXBOX-AST-RX-STATUS received\n", "FAXBOX-AST-RX-PAGES 2\n",
		"FAXBOX-AST-RX-PDF true\n", "FAXBOX-AST-RX-DOCUMENT %PDF-",
		"FAXBOX-AST-STOP /etc/init.d/S20dahdi ok", "FAXBOX-AST-LEFT 0")
}

// farEndFax is the 2-page TIFF-F the far end of a qemu receive test sends,
// made from a PDF by faxbox's converter (real ghostscript).
func farEndFax(t *testing.T) string {
	t.Helper()
	testkit.Require(t, "gs", "tiff2pdf")
	dir := t.TempDir()
	src := filepath.Join(dir, "doc.pdf")
	if err := os.WriteFile(src, testkit.PDF(t, 2), 0o600); err != nil {
		t.Fatal(err)
	}
	tif := filepath.Join(dir, "fax.tif")
	pages, err := convert.New(convert.Config{}).Convert(context.Background(), []convert.Input{{Path: src, Type: convert.PDF}}, tif,
		convert.Options{Resolution: "standard", PageSize: "a4"})
	if err != nil || pages != 2 {
		t.Fatalf("convert: %d pages, %v", pages, err)
	}
	return tif
}

// bootReceive boots the qemu guest in a receive mode (dahdi-rx, e1-rx) with
// farEndFax as the far end's document and returns its console (lines
// ending in \n). Both loc spans must be joined: neither in alarm
// (prefix-SPAN lines).
func bootReceive(t *testing.T, mode, prefix string) string {
	t.Helper()
	bin := labFaxbox(t)
	tif := farEndFax(t)
	// The serial console ends its lines with \r\n.
	console := strings.ReplaceAll(boot(t, "asterisk.sh", bin, lab.Root(), mode, tif), "\r", "")
	for _, span := range []string{"1 Dynamic 'loc' span at '1:0'", "2 Dynamic 'loc' span at '1:1'"} {
		if !regexp.MustCompile(prefix + `-SPAN +` + regexp.QuoteMeta(span) + ` +OK `).MatchString(console) {
			t.Errorf("span %s is not up without alarms", span)
		}
	}
	return console
}
