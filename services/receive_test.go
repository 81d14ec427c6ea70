package services

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/faxbox/faxbox/firmware/config"
)

// asteriskMatch reports whether Asterisk pattern p (without "_") matches n.
func asteriskMatch(p, n string) bool {
	re := strings.NewReplacer("X", "[0-9]").Replace(p)
	return regexp.MustCompile("^" + re + "$").MatchString(n)
}

func TestDIDPatterns(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"500-599", []string{"_5XX"}},
		{"500", []string{"500"}},
		{"500-519", []string{"_5[0-1]X"}},
		{"1000-1999", []string{"_1XXX"}},
		{"00-99", []string{"_XX"}},
	} {
		from, to, _ := strings.Cut(c.in, "-")
		if to == "" {
			to = from
		}
		if got := didPatterns([]config.DIDRange{{From: from, To: to}}); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.in, got, c.want)
		}
	}
	// Every range of 3-digit numbers: the patterns match exactly its
	// numbers, each number once.
	for _, r := range [][2]int{{123, 456}, {5, 994}, {499, 500}, {100, 100}, {0, 999}, {120, 129}, {121, 128}, {199, 301}} {
		lo, hi := fmt.Sprintf("%03d", r[0]), fmt.Sprintf("%03d", r[1])
		ps := rangePatterns(lo, hi)
		for n := 0; n < 1000; n++ {
			s := fmt.Sprintf("%03d", n)
			hits := 0
			for _, p := range ps {
				if asteriskMatch(p, s) {
					hits++
				}
			}
			in := n >= r[0] && n <= r[1]
			if in && hits != 1 || !in && hits != 0 {
				t.Fatalf("%s-%s %v: %s matched %d times", lo, hi, ps, s, hits)
			}
		}
	}
}

func TestReceiveContext(t *testing.T) {
	cfg := config.Default()
	cfg.Asterisk = &config.Asterisk{AMISecret: "secret-123", ReceiveDir: "/var/spool/asterisk/fax"}
	cfg.Inbox.DIDs = []string{"500-599", "42"}
	files, err := Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ext := string(files["extensions.conf"])
	for _, want := range []string{
		"exten => _5XX,1,Set(FAXBOX_DID=${FILTER(0-9,${EXTEN})})",
		"exten => 42,1,Set(FAXBOX_DID=",
		"exten => _[0-9+a-zA-Z].,1,Hangup(1)",
		"[faxbox-rx]",
		"ReceiveFAX(${FAXBOX_RX},f)",
		"Set(FAXBOX_RX=/var/spool/asterisk/fax/rx-${FAXBOX_UID}.tif)",
		"exten => h,1,Set(DB(faxbox-rx/${FAXBOX_UID})=",
		"UserEvent(FaxboxReceived,Reception: ${FAXBOX_UID},",
	} {
		if !strings.Contains(ext, want) {
			t.Errorf("extensions.conf lacks %q", want)
		}
	}
	// Without dids every number receives.
	cfg.Inbox.DIDs = nil
	files, _ = Render(cfg)
	if ext := string(files["extensions.conf"]); strings.Contains(ext, "Hangup(1)") || !strings.Contains(ext, "exten => _[0-9+a-zA-Z].,1,Set(FAXBOX_DID=") {
		t.Errorf("without dids:\n%s", ext)
	}
}
