package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/api"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/inbox"
	"github.com/faxbox/faxbox/firmware/routing"
	"github.com/faxbox/faxbox/firmware/store"
)

// TestSignedDownloadLink: a signed download URL serves the received fax's
// document without a token while it is valid, and is refused once it has
// expired (the server's clock moved on), with a tampered signature, for
// another fax or format, and signed with another key; without a signature
// the token is needed as before.
func TestSignedDownloadLink(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	put := func(src string) inbox.ID {
		f := &inbox.Fax{ID: inbox.NewID(), Source: src, Status: inbox.Received, Pages: 1, PDF: true, TIFF: true, CreatedAt: time.Now()}
		dir := st.DocDir(string(f.ID))
		os.MkdirAll(dir, 0o750)
		os.WriteFile(filepath.Join(dir, inbox.PDFFile), []byte("%PDF-1.4 the pages of "+src), 0o640)
		os.WriteFile(filepath.Join(dir, inbox.TIFFFile), []byte("II*\x00"), 0o640)
		if _, err := st.PutReceived(f, false); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
		return f.ID
	}
	a, b := put("a"), put("b")
	key, err := routing.LinkKey("link-test-secret", st)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	var now atomic.Int64
	now.Store(start.UnixNano())
	cfg := config.Default()
	cfg.Tokens = []string{"link-test-token"}
	s := &api.Server{Cfg: cfg, Store: st, LinkKey: key, Now: func() time.Time { return time.Unix(0, now.Load()) }}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	get := func(path, token string) (int, string, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
	}
	link := routing.LinkPath(key, a, "pdf", start.Add(time.Hour))

	if code, ct, body := get(link, ""); code != 200 || ct != "application/pdf" || body != "%PDF-1.4 the pages of a" {
		t.Fatalf("valid link: %d %s %q", code, ct, body)
	}
	now.Store(start.Add(59 * time.Minute).UnixNano())
	if code, _, _ := get(link, ""); code != 200 {
		t.Errorf("link a minute before it expires: %d", code)
	}
	tiff := routing.LinkPath(key, a, "tiff", start.Add(time.Hour))
	if code, ct, _ := get(tiff, ""); code != 200 || ct != "image/tiff" {
		t.Errorf("TIFF link: %d %s", code, ct)
	}
	refused := map[string]string{
		"tampered signature": tamper(link),
		"another fax":        strings.Replace(link, string(a), string(b), 1),
		"another format":     strings.Replace(link, "format=pdf", "format=tiff", 1),
		"later expiry":       strings.Replace(link, "expires=", "expires=1", 1),
		"no signature":       strings.Split(link, "&sig=")[0],
		"another key":        routing.LinkPath([]byte("another key, 32 bytes long......."), a, "pdf", start.Add(time.Hour)),
	}
	for name, path := range refused {
		if code, _, body := get(path, ""); code != 403 || !strings.Contains(body, "bad_signature") {
			t.Errorf("%s: %d %s", name, code, body)
		}
	}
	now.Store(start.Add(time.Hour).UnixNano())
	if code, _, body := get(link, ""); code != 403 || !strings.Contains(body, "link_expired") {
		t.Errorf("expired link: %d %s", code, body)
	}
	if code, _, _ := get(link, "link-test-token"); code != 403 {
		t.Errorf("an expired link with a token: %d (a signed request is judged by its signature)", code)
	}
	plain := "/v1/inbox/" + string(a) + "/document"
	if code, _, _ := get(plain, ""); code != 401 {
		t.Errorf("no token, no signature: %d", code)
	}
	if code, _, body := get(plain, "link-test-token"); code != 200 || body != "%PDF-1.4 the pages of a" {
		t.Errorf("with the token: %d %q", code, body)
	}
	if code, _, _ := get("/v1/inbox/"+string(a)+"?expires=1&sig=00", ""); code != 401 {
		t.Errorf("a signature on another endpoint: %d, want 401", code)
	}
}

// tamper flips the last hex digit of the link's signature.
func tamper(link string) string {
	last := link[len(link)-1]
	repl := byte('0')
	if last == '0' {
		repl = '1'
	}
	return link[:len(link)-1] + string(repl)
}
