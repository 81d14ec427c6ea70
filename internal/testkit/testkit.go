// Package testkit holds helpers for faxbox's end-to-end tests: documents made
// with the real ghostscript, a webhook receiver, and an API client.
package testkit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/faxbox/faxbox/firmware/job"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Require fails the test (never skips) when a command the test needs is
// missing, saying how to get it.
func Require(t testing.TB, cmds ...string) {
	t.Helper()
	for _, c := range cmds {
		if _, err := exec.LookPath(c); err != nil {
			t.Fatalf("%s is not installed: run `make deps` (tools/deps.sh) or `make test`, which install everything the tests need", c)
		}
	}
}

// PDF makes a sparse PDF of n pages with real ghostscript, each page saying
// its number in large type.
func PDF(t testing.TB, n int) []byte {
	t.Helper()
	Require(t, "gs")
	dir := t.TempDir()
	var ps strings.Builder
	ps.WriteString("%!PS\n/Helvetica findfont 48 scalefont setfont\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&ps, "72 600 moveto (faxbox test page %d) show\n72 500 moveto (of %d) show\nshowpage\n", i, n)
	}
	src := filepath.Join(dir, "in.ps")
	out := filepath.Join(dir, "out.pdf")
	if err := os.WriteFile(src, []byte(ps.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pdfwrite", "-sPAPERSIZE=a4", "-o", out, src)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gs: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Part is one multipart field or file.
type Part struct {
	Name, FileName, ContentType string
	Data                        []byte
}

// Field is a text part.
func Field(name, value string) Part { return Part{Name: name, Data: []byte(value)} }

// File is a file part.
func File(name, filename string, data []byte) Part {
	return Part{Name: name, FileName: filename, Data: data, ContentType: "application/octet-stream"}
}

// Multipart encodes parts; it returns the body and its content type.
func Multipart(parts ...Part) (*bytes.Buffer, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		if p.FileName != "" {
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, p.Name, p.FileName))
			h.Set("Content-Type", p.ContentType)
		} else {
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q`, p.Name))
		}
		w, _ := mw.CreatePart(h)
		w.Write(p.Data)
	}
	mw.Close()
	return &buf, mw.FormDataContentType()
}

// Client talks to a running box.
type Client struct {
	Base, Token string
	HTTP        *http.Client
}

// Do sends a request and decodes a JSON answer into out (when not nil).
func (c *Client) Do(t testing.TB, method, path string, body io.Reader, ctype string, out any) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, c.Base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: HTTP %d, not JSON: %v\n%s", method, path, resp.StatusCode, err, b)
		}
	}
	return resp
}

// Submit posts a multipart fax and decodes the answer.
func (c *Client) Submit(t testing.TB, path string, out any, parts ...Part) *http.Response {
	t.Helper()
	body, ct := Multipart(parts...)
	return c.Do(t, http.MethodPost, path, body, ct, out)
}

// Hook is one request the receiver got.
type Hook struct {
	Method string
	URL    string
	Header http.Header
	Body   []byte
	At     time.Time
}

// Receiver is a webhook receiver that records every request. FailFirst makes
// it answer 500 to that many requests first.
type Receiver struct {
	*httptest.Server
	mu        sync.Mutex
	hooks     []Hook
	FailFirst int
	seen      int
	notify    chan struct{}
}

// NewReceiver starts a receiver on 127.0.0.1.
func NewReceiver(t testing.TB) *Receiver {
	r := &Receiver{notify: make(chan struct{}, 1)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.seen++
		fail := r.seen <= r.FailFirst
		if !fail {
			r.hooks = append(r.hooks, Hook{Method: req.Method, URL: req.URL.String(), Header: req.Header.Clone(), Body: b, At: time.Now()})
		}
		r.mu.Unlock()
		select {
		case r.notify <- struct{}{}:
		default:
		}
		if fail {
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

// Hooks returns what was received so far.
func (r *Receiver) Hooks() []Hook {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Hook(nil), r.hooks...)
}

// Wait waits until pred holds for the received hooks.
func (r *Receiver) Wait(t testing.TB, d time.Duration, what string, pred func([]Hook) bool) []Hook {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		h := r.Hooks()
		if pred(h) {
			return h
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, x := range h {
				fmt.Fprintf(&b, "  %s %s %.300s\n", x.Method, x.URL, x.Body)
			}
			t.Fatalf("timed out after %s waiting for %s; received:\n%s", d, what, b.String())
		}
		select {
		case <-r.notify:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Event is a decoded JSON webhook.
type Event struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
	Job   struct {
		ID             string `json:"id"`
		Status         string `json:"status"`
		Pages          int    `json:"pages"`
		PagesConfirmed int    `json:"pages_confirmed"`
		ClientRef      string `json:"client_ref"`
		Error          *struct {
			Code string `json:"code"`
		} `json:"error"`
		Attempts []json.RawMessage `json:"attempts"`
	} `json:"-"`
}

// Events decodes the POSTed webhooks for job id (all when id is "").
func Events(hs []Hook, id string) []Event {
	var out []Event
	for _, h := range hs {
		if h.Method != http.MethodPost {
			continue
		}
		var e Event
		if json.Unmarshal(h.Body, &e) != nil {
			continue
		}
		json.Unmarshal(e.Data, &e.Job)
		if id == "" || e.Job.ID == id {
			out = append(out, e)
		}
	}
	return out
}

// PDFOfSize makes a one-page PDF of roughly size bytes (an incompressible
// image fills it), with real ghostscript.
func PDFOfSize(t testing.TB, size int) []byte {
	t.Helper()
	Require(t, "gs")
	dir := t.TempDir()
	side := 8
	for side*side < size {
		side++
	}
	var ps strings.Builder
	ps.WriteString("%!PS\n/Helvetica findfont 24 scalefont setfont 72 750 moveto (faxbox sized test document) show\n")
	if size > 20000 {
		fmt.Fprintf(&ps, "gsave 72 72 translate 450 450 scale %d %d 8 [%d 0 0 -%d 0 %d] currentfile /ASCIIHexDecode filter image\n", side, side, side, side, side)
		seed := uint32(12345)
		for i := 0; i < side*side; i++ {
			seed = seed*1664525 + 1013904223
			fmt.Fprintf(&ps, "%02x", byte(seed>>24))
			if i%40 == 39 {
				ps.WriteByte('\n')
			}
		}
		ps.WriteString(">\ngrestore\n")
	} else {
		for y := 700; y > 80 && ps.Len() < size*3; y -= 14 {
			fmt.Fprintf(&ps, "/Courier findfont 10 scalefont setfont 72 %d moveto (line %d of a plain business letter, with some words on it.) show\n", y, y)
		}
	}
	ps.WriteString("showpage\n")
	src := filepath.Join(dir, "in.ps")
	out := filepath.Join(dir, "out.pdf")
	os.WriteFile(src, []byte(ps.String()), 0o600)
	if b, err := exec.Command("gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pdfwrite", "-dAutoFilterGrayImages=false", "-dGrayImageFilter=/FlateEncode", "-o", out, src).CombinedOutput(); err != nil {
		t.Fatalf("gs: %v\n%s", err, b)
	}
	b, _ := os.ReadFile(out)
	return b
}

// Percentile returns the p-th percentile (0..100) of sorted durations.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

// FaxTIFF makes a fax-ready TIFF-F (G4, 1728 px wide, standard resolution)
// of n sparse pages with real ghostscript (gs -sDEVICE=tiffg4 -r204x98 -g1728x1078: standard resolution, 1728 pixels wide).
func FaxTIFF(t testing.TB, n int) []byte {
	t.Helper()
	pdf := PDF(t, n)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.pdf"), filepath.Join(dir, "out.tif")
	os.WriteFile(in, pdf, 0o600)
	if b, err := exec.Command("gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=tiffg4", "-r204x98", "-g1728x1078",
		"-dFIXEDMEDIA", "-dPDFFitPage", "-o", out, in).CombinedOutput(); err != nil {
		t.Fatalf("gs: %v\n%s", err, b)
	}
	b, _ := os.ReadFile(out)
	return b
}

// WaitJob polls GET path (a fax or call job) until its status is want. It
// fails the test after d, or at once when stopOnEnd and the job ended in
// another status; the failure shows the whole job.
func (c *Client) WaitJob(t testing.TB, path string, want job.Status, d time.Duration, stopOnEnd bool) *job.Job {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		var j job.Job
		c.Do(t, "GET", path, nil, "", &j)
		if j.Status == want {
			return &j
		}
		if stopOnEnd && j.Status.Terminal() || time.Now().After(deadline) {
			b, _ := json.Marshal(j)
			t.Fatalf("%s is %s, want %s: %s", path, j.Status, want, b)
		}
		time.Sleep(30 * time.Millisecond)
	}
}
