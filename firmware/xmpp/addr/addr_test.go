package addr

import (
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	good := map[string]string{
		"alice@example.org":         "alice@example.org",
		"Alice@Example.ORG":         "alice@example.org",
		"fax-room@conference.x.com": "fax-room@conference.x.com",
		"bob@localhost":             "bob@localhost",
		"müller@bücher.example":     "müller@bücher.example",
	}
	for in, want := range good {
		j, err := Check(in)
		if err != nil || j.String() != want {
			t.Errorf("Check(%q) = %v, %v; want %s", in, j, err, want)
		}
	}
	bad := []string{
		"", "example.org", "alice@example.org/phone", "alice@example.org\r\nbcc@evil.example",
		"alice\n@example.org", "<script>@example.org", "a@example.org<b>", "alice @example.org",
		"a\x00b@example.org", "alice@intranet", "@example.org", "alice@", "a\"b@example.org",
		strings.Repeat("a", 600) + "@example.org", "alice@exa\u202emple.org", "al\xffice@example.org",
	}
	for _, in := range bad {
		if _, err := Check(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("Check(%q) = %v; want ErrInvalid", in, err)
		} else if strings.Contains(err.Error(), "\n") || (len(in) > 3 && strings.Contains(err.Error(), in)) {
			t.Errorf("Check(%q): error quotes the input: %v", in, err)
		}
	}
}

func TestNick(t *testing.T) {
	for _, n := range []string{"faxbox", "Fax Box 2"} {
		if err := Nick(n); err != nil {
			t.Errorf("Nick(%q): %v", n, err)
		}
	}
	for _, n := range []string{"", "a\nb", "<b>", "x/y", strings.Repeat("n", 65)} {
		if err := Nick(n); err == nil {
			t.Errorf("Nick(%q) accepted", n)
		}
	}
}
