package rules

import (
	"errors"
	"testing"
)

func TestNumberAndDenied(t *testing.T) {
	deny := []string{"00", "+", "0900"}
	for _, c := range []struct {
		n    string
		want error
	}{
		{"030123456", nil}, {"100", nil}, {"12", ErrNumber}, {"01x", ErrNumber}, {"1\n2", ErrNumber},
		{"+4930123", ErrDenied}, {"0049301", ErrDenied}, {"09001234", ErrDenied}, {"123456789012345678901", ErrNumber},
	} {
		if err := Dialable(c.n, deny); !errors.Is(err, c.want) && !(err == nil && c.want == nil) {
			t.Errorf("Dialable(%q) = %v, want %v", c.n, err, c.want)
		}
	}
	// Short extensions are checked against the deny list too.
	if err := Denied("00", deny); !errors.Is(err, ErrDenied) {
		t.Errorf("Denied(00) = %v", err)
	}
}

func TestResultURL(t *testing.T) {
	for _, c := range []struct {
		u     string
		local bool
		want  error
	}{
		{"http://crm.example/hook", false, nil},
		{"https://203.0.113.7:8443/x", false, nil},
		{"ftp://x/y", false, ErrURL},
		{"http://user:pass@crm.example/hook", false, ErrURL},
		{"/relative", false, ErrURL},
		{"http://127.0.0.1:5038/", false, ErrLocal},
		{"http://[::1]/", false, ErrLocal},
		{"http://169.254.1.1/", false, ErrLocal},
		{"http://0.0.0.0/", false, ErrLocal},
		{"http://localhost/", false, ErrLocal},
		{"http://127.1/", false, ErrHost},
		{"http://0x7f000001/", false, ErrHost},
		{"http://127.0.0.1:9000/hook", true, nil},
	} {
		if err := ResultURL(c.u, c.local); !errors.Is(err, c.want) && !(err == nil && c.want == nil) {
			t.Errorf("ResultURL(%q, %v) = %v, want %v", c.u, c.local, err, c.want)
		}
	}
}
