package asterisk

import (
	"errors"
	"strings"
	"testing"

	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/job"
)

func req() dialler.Request {
	return dialler.Request{AttemptID: "at_01abc", JobID: "fx_01abc", To: "100", Line: job.LineAt("trunk", 0),
		Fax: &dialler.FaxSpec{TIFF: "/var/lib/faxbox/documents/fx_01abc/fax.tif", Pages: 2, ECM: true, T38: true, StationID: "ACME 030"}}
}

// TestHostileValuesNeverReachAsterisk: every value that would reach an
// Originate Variable, a call file or the dialplan is checked; CR/LF, ${...},
// & and , are refused.
func TestHostileValuesNeverReachAsterisk(t *testing.T) {
	for name, mod := range map[string]func(*dialler.Request){
		"CRLF in number":        func(r *dialler.Request) { r.To = "100\r\nChannel: Local/x" },
		"dialplan in number":    func(r *dialler.Request) { r.To = "${SHELL(id)}" },
		"ampersand in number":   func(r *dialler.Request) { r.To = "100&PJSIP/999" },
		"comma in number":       func(r *dialler.Request) { r.To = "100,t" },
		"relative file":         func(r *dialler.Request) { r.Fax.TIFF = "fax.tif" },
		"dotdot file":           func(r *dialler.Request) { r.Fax.TIFF = "/var/lib/faxbox/../../etc/passwd" },
		"dialplan in file":      func(r *dialler.Request) { r.Fax.TIFF = "/tmp/${SHELL(id)}.tif" },
		"comma in file":         func(r *dialler.Request) { r.Fax.TIFF = "/tmp/a,b.tif" },
		"newline in attempt id": func(r *dialler.Request) { r.AttemptID = "at_1\nAction: Command" },
		"bad rate":              func(r *dialler.Request) { r.Fax.MaxRate = 1234 },
		"no line":               func(r *dialler.Request) { r.Line = job.LineID{} },
		"dialplan in line":      func(r *dialler.Request) { r.Line.Group = "${SHELL(id)}" },
		"slash in line":         func(r *dialler.Request) { r.Line.Group = "trunk/x" },
	} {
		r := req()
		mod(&r)
		if _, err := vars(r); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	r := req()
	r.Fax.StationID = "A${SHELL(x)},B\r\n"
	vs, err := vars(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if strings.ContainsAny(v[1], "${},\r\n&;") {
			t.Errorf("%s=%q reaches Asterisk", v[0], v[1])
		}
	}
}

func TestChannelChoice(t *testing.T) {
	d, err := New(Config{Dial: "PJSIP/%s@trunk"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := req()
	if ch := d.channel(r); ch != "PJSIP/100@trunk" {
		t.Errorf("T.38: %s", ch)
	}
	r.Fax.T38 = false
	if ch := d.channel(r); ch != "PJSIP/100@trunk-g711" {
		t.Errorf("G.711: %s", ch)
	}
	for _, bad := range []string{"PJSIP/%s@trunk\nX", "PJSIP/%s,%s", "Local/%s@x/n,${X}", "PJSIP/100@trunk"} {
		if _, err := New(Config{Dial: bad}, nil, nil); err == nil {
			t.Errorf("dial template %q accepted", bad)
		}
	}
}
