package mail

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

// crlf turns a readable test mail into wire form.
func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }

const pdfBytes = "%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"

func mixed(parts ...string) string {
	var b strings.Builder
	b.WriteString("From: a@example.com\nTo: 123456@fax.local\nSubject: hello\nMessage-ID: <m1@example.com>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"XX\"\n\n")
	for _, p := range parts {
		b.WriteString("--XX\n" + p + "\n")
	}
	b.WriteString("--XX--\n")
	return b.String()
}

func TestParseOrderAndBody(t *testing.T) {
	pdf64 := base64.StdEncoding.EncodeToString([]byte(pdfBytes))
	raw := mixed(
		"Content-Type: multipart/alternative; boundary=\"YY\"\n\n--YY\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nGr=FC=DFe\n--YY\nContent-Type: text/html\n\n<p>Gr&uuml;&szlig;e</p>\n--YY--",
		"Content-Type: application/pdf; name=\"a.pdf\"\nContent-Disposition: attachment; filename=\"a.pdf\"\nContent-Transfer-Encoding: base64\n\n"+pdf64,
		"Content-Type: text/plain\nContent-Disposition: attachment; filename*=UTF-8''notes%20%C3%A4.txt\n\nsecond doc",
	)
	p, err := parseMail(crlf(raw))
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "hello" || p.MessageID != "m1@example.com" {
		t.Fatalf("subject %q, id %q", p.Subject, p.MessageID)
	}
	if strings.TrimSpace(p.Body) != "Grüße" {
		t.Fatalf("body %q: want the plain-text alternative decoded to UTF-8", p.Body)
	}
	if len(p.Docs) != 2 || p.Docs[0].Name != "a.pdf" || string(p.Docs[0].Data) != strings.ReplaceAll(pdfBytes, "\n", "\n") || p.Docs[1].Name != "notes ä.txt" {
		t.Fatalf("docs %+v", p.Docs)
	}
	if string(p.Docs[0].Data) != pdfBytes {
		t.Fatalf("the PDF came out changed: %q", p.Docs[0].Data)
	}
}

func code(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

func TestParseRefusals(t *testing.T) {
	ok := "From: a@example.com\nSubject: s\n\nbody\n"
	cases := []struct {
		name string
		raw  []byte
		code int
		want string
	}{
		{"bare LF in header", []byte("From: a@example.com\r\nSubject: s\nBcc: x@evil\r\n\r\nbody\r\n"), 554, "injection"},
		{"bare CR in header", []byte("From: a@example.com\r\nSubject: s\rBcc: x@evil\r\n\r\nbody\r\n"), 554, "injection"},
		{"two subjects", crlf("From: a@example.com\nSubject: s\nSubject: t\n\nbody\n"), 554, "injection"},
		{"two content types", crlf("From: a@example.com\nContent-Type: text/plain\nContent-Type: multipart/mixed; boundary=x\n\nbody\n"), 554, "injection"},
		{"encoded CRLF in subject", crlf("From: a@example.com\nSubject: =?utf-8?b?" + base64.StdEncoding.EncodeToString([]byte("hi\r\nBcc: x@evil")) + "?=\n\nbody\n"), 554, "injection"},
		{"NUL in header", []byte("From: a@example.com\r\nSubject: a\x00b\r\n\r\nbody\r\n"), 554, "injection"},
		{"not a field", crlf("From: a@example.com\nthis is no header\n\nbody\n"), 554, "Malformed"},
		{"no boundary", crlf("From: a@example.com\nContent-Type: multipart/mixed\n\n--x\n\nhi\n--x--\n"), 554, "Malformed"},
		{"unclosed multipart", crlf("From: a@example.com\nContent-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain\n\nhi\n"), 554, "Malformed"},
		{"bad base64", crlf(mixed("Content-Type: application/pdf\nContent-Disposition: attachment; filename=a.pdf\nContent-Transfer-Encoding: base64\n\n!!!not base64!!!")), 554, "Malformed"},
		{"unknown encoding", crlf("From: a@example.com\nContent-Type: application/pdf\nContent-Transfer-Encoding: x-rot13\n\nhi\n"), 554, "Malformed"},
		{"bad content type", crlf("From: a@example.com\nContent-Type: text/plain; charset\n\nhi\n"), 554, "Malformed"},
		{"forwarded message", crlf(mixed("Content-Type: message/rfc822\n\nFrom: b@example.com\n\nold")), 554, "forwarded"},
		{"file name with line break", crlf(mixed("Content-Type: application/pdf\nContent-Disposition: attachment; filename*=UTF-8''a%0D%0ABcc%3A%20x.pdf\n\n" + pdfBytes)), 554, "injection"},
	}
	if _, err := parseMail(crlf(ok)); err != nil {
		t.Fatalf("a plain mail was refused: %v", err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseMail(c.raw)
			if code(err) != c.code || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %d with %q", err, c.code, c.want)
			}
		})
	}
}

func TestParseDepthLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString("From: a@example.com\nContent-Type: multipart/mixed; boundary=b0\n\n")
	for i := 1; i <= maxDepth+2; i++ {
		b.WriteString("--b" + string(rune('0'+i-1)) + "\nContent-Type: multipart/mixed; boundary=b" + string(rune('0'+i)) + "\n\n")
	}
	_, err := parseMail(crlf(b.String()))
	if code(err) != 554 {
		t.Fatalf("deep nesting: %v", err)
	}
}

func TestCheckAddress(t *testing.T) {
	for _, good := range []string{"a@example.com", "first.last+tag@sub.example.co", "x@localhost", "u@[127.0.0.1]"} {
		if _, err := CheckAddress(good); err != nil {
			t.Errorf("%q refused: %v", good, err)
		}
	}
	for _, bad := range []string{"", "a", "a@", "@b.c", "a@b.c\r\nRCPT TO:<x@y>", "A <a@b.c>", "a@b.c, d@e.f", "a b@c.d", "ä@b.c", "a@-b.c", "a@b..c",
		strings.Repeat("x", 65) + "@b.c", "a@" + strings.Repeat("b", 260) + ".c"} {
		if _, err := CheckAddress(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
