package box

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/store"
	"github.com/faxbox/faxbox/firmware/tiff"
	"github.com/faxbox/faxbox/firmware/webhook"
	"github.com/faxbox/faxbox/internal/testkit"
)

const token = "test-token-123"

type env struct {
	box *Box
	c   *testkit.Client
	dir string
}

func startBox(t *testing.T, mod func(*config.Config)) *env {
	t.Helper()
	testkit.Require(t, "gs", "tiff2pdf")
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Tokens = []string{token}
	cfg.WebhookSecret = "s3cret"
	cfg.TestLine.PageTime = job.Duration(50 * time.Millisecond)
	cfg.Webhook.FirstRetry = job.Duration(100 * time.Millisecond)
	cfg.Compat.AllowIPs = []string{"127.0.0.1/32"}
	cfg.Webhook.AllowLoopback = true // the test receivers listen on 127.0.0.1
	if mod != nil {
		mod(&cfg)
	}
	b, err := Open(context.Background(), cfg, Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		b.Close()
		if n := b.Engine.Stats().SkippedWrites; n != 0 {
			t.Errorf("the store refused %d of the engine's changes", n)
		}
		if err := store.CheckDir(cfg.DataDir); err != nil {
			t.Errorf("after the test: %v", err)
		}
	})
	return &env{box: b, c: &testkit.Client{Base: "http://" + ln.Addr().String(), Token: token}, dir: cfg.DataDir}
}

func (e *env) waitStatus(t *testing.T, id string, want job.Status, d time.Duration) *job.Job {
	t.Helper()
	return e.c.WaitJob(t, "/v1/faxes/"+id, want, d, false)
}

func TestDeliveredWithSignedWebhook(t *testing.T) {
	e := startBox(t, nil)
	rcv := testkit.NewReceiver(t)
	var j job.Job
	resp := e.c.Submit(t, "/v1/faxes", &j,
		testkit.File("file", "letter.pdf", testkit.PDF(t, 2)),
		testkit.Field("to", "99990001"),
		testkit.Field("callback_url", rcv.URL+"/hook"),
		testkit.Field("resolution", "standard"))
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Location") != "/v1/faxes/"+j.ID {
		t.Fatalf("submit: %d %v", resp.StatusCode, resp.Header)
	}
	hs := rcv.Wait(t, 60*time.Second, "fax.delivered", func(hs []testkit.Hook) bool {
		ev := testkit.Events(hs, j.ID)
		return len(ev) > 0 && ev[len(ev)-1].Event == "fax.delivered"
	})
	h := hs[len(hs)-1]
	if !webhook.Verify("s3cret", h.Body, h.Header.Get("X-Faxbox-Signature")) {
		t.Errorf("signature %q does not verify", h.Header.Get("X-Faxbox-Signature"))
	}
	if h.Header.Get("X-Faxbox-Delivery") == "" {
		t.Error("no X-Faxbox-Delivery id")
	}
	ev := testkit.Events(hs, j.ID)
	if ev[0].Job.Pages != 2 || ev[0].Job.PagesConfirmed != 2 || ev[0].Job.Status != "delivered" {
		t.Errorf("webhook job: %+v", ev[0].Job)
	}
	// The converted document: 2 pages, 1728 wide, standard resolution.
	tif := filepath.Join(e.box.Store.DocDir(j.ID), "fax.tif")
	pages, err := tiff.Validate(tif, 1728)
	if err != nil || pages != 2 {
		t.Fatalf("converted TIFF: %d pages, %v", pages, err)
	}
	resp = e.c.Do(t, "GET", "/v1/faxes/"+j.ID+"/document?format=pdf", nil, "", nil)
	body := new(bytes.Buffer)
	body.ReadFrom(resp.Body)
	if resp.StatusCode != 200 || !bytes.HasPrefix(body.Bytes(), []byte("%PDF-")) {
		t.Errorf("document as PDF: %d %.20q", resp.StatusCode, body.Bytes())
	}
	resp = e.c.Do(t, "GET", "/v1/faxes/"+j.ID+"/document?format=tiff", nil, "", nil)
	body.Reset()
	body.ReadFrom(resp.Body)
	if resp.StatusCode != 200 || !bytes.HasPrefix(body.Bytes(), []byte("II*\x00")) && !bytes.HasPrefix(body.Bytes(), []byte("MM\x00*")) {
		t.Errorf("document as TIFF: %d", resp.StatusCode)
	}
}

func TestBusyRetriesThenFails(t *testing.T) {
	e := startBox(t, nil)
	rcv := testkit.NewReceiver(t)
	var j job.Job
	e.c.Submit(t, "/v1/faxes", &j, testkit.File("file", "a.txt", []byte("hello fax\n")),
		testkit.Field("to", "99990002"), testkit.Field("max_attempts", "3"),
		testkit.Field("retry_interval", "1s"), testkit.Field("callback_url", rcv.URL))
	hs := rcv.Wait(t, 60*time.Second, "fax.failed", func(hs []testkit.Hook) bool {
		ev := testkit.Events(hs, j.ID)
		return len(ev) > 0 && ev[len(ev)-1].Event == "fax.failed"
	})
	ev := testkit.Events(hs, j.ID)
	var names []string
	for _, x := range ev {
		names = append(names, x.Event)
	}
	if strings.Join(names, ",") != "fax.attempt_failed,fax.attempt_failed,fax.attempt_failed,fax.failed" {
		t.Errorf("events: %v", names)
	}
	last := ev[len(ev)-1].Job
	if last.Error == nil || last.Error.Code != "line.busy" || len(last.Attempts) != 3 {
		t.Fatalf("final job: error %+v, %d attempts", last.Error, len(last.Attempts))
	}
	var full job.Job
	e.c.Do(t, "GET", "/v1/faxes/"+j.ID, nil, "", &full)
	for i := 1; i < len(full.Attempts); i++ {
		gap := full.Attempts[i].StartedAt.Sub(*full.Attempts[i-1].EndedAt)
		if gap < time.Second-10*time.Millisecond {
			t.Errorf("attempt %d began %s after the previous ended; retry_interval is 1s", i+1, gap)
		}
	}
}

func TestResumeAfterPageOne(t *testing.T) {
	e := startBox(t, nil)
	var j job.Job
	e.c.Submit(t, "/v1/faxes", &j, testkit.File("file", "x.pdf", testkit.PDF(t, 3)),
		testkit.Field("to", "99990005"), testkit.Field("retry_interval", "1s"), testkit.Field("resolution", "standard"))
	got := e.waitStatus(t, j.ID, job.Delivered, 60*time.Second)
	if len(got.Attempts) != 2 {
		t.Fatalf("attempts: %d", len(got.Attempts))
	}
	a1, a2 := got.Attempts[0], got.Attempts[1]
	if a1.PagesSent != 1 || a2.FirstPage != 2 || a2.PagesSent != 2 || got.PagesConfirmed != 3 {
		t.Fatalf("resume: first %+v second %+v confirmed %d", a1, a2, got.PagesConfirmed)
	}
}

func TestIdempotentClientRef(t *testing.T) {
	e := startBox(t, nil)
	doc := testkit.PDF(t, 1)
	var a, b job.Job
	r1 := e.c.Submit(t, "/v1/faxes", &a, testkit.File("file", "x.pdf", doc), testkit.Field("to", "99990001"), testkit.Field("client_ref", "order-42"))
	r2 := e.c.Submit(t, "/v1/faxes", &b, testkit.File("file", "x.pdf", doc), testkit.Field("to", "99990001"), testkit.Field("client_ref", "order-42"))
	if r1.StatusCode != 202 || r2.StatusCode != 200 || a.ID != b.ID {
		t.Fatalf("same content: %d %d, ids %s %s", r1.StatusCode, r2.StatusCode, a.ID, b.ID)
	}
	var ae map[string]map[string]string
	r3 := e.c.Submit(t, "/v1/faxes", &ae, testkit.File("file", "x.pdf", doc), testkit.Field("to", "99990003"), testkit.Field("client_ref", "order-42"))
	if r3.StatusCode != 409 || ae["error"]["code"] != "client_ref_conflict" {
		t.Fatalf("other content: %d %v", r3.StatusCode, ae)
	}
	var list struct{ Items []job.Job }
	e.c.Do(t, "GET", "/v1/faxes?client_ref=order-42", nil, "", &list)
	if len(list.Items) != 1 {
		t.Fatalf("list by client_ref: %d", len(list.Items))
	}
	entries, _ := os.ReadDir(filepath.Join(e.dir, "documents"))
	if len(entries) != 1 {
		t.Fatalf("%d document directories; the duplicates left files behind", len(entries))
	}
}

func TestCancelAndRetry(t *testing.T) {
	e := startBox(t, func(c *config.Config) { c.TestLine.PageTime = job.Duration(2 * time.Second) })
	rcv := testkit.NewReceiver(t)
	var j job.Job
	e.c.Submit(t, "/v1/faxes", &j, testkit.File("file", "x.txt", []byte("x")), testkit.Field("to", "99990001"), testkit.Field("callback_url", rcv.URL))
	e.waitStatus(t, j.ID, job.Sending, 30*time.Second)
	resp := e.c.Do(t, "DELETE", "/v1/faxes/"+j.ID, nil, "", nil)
	if resp.StatusCode != 202 {
		t.Fatalf("cancel in a call: %d", resp.StatusCode)
	}
	got := e.waitStatus(t, j.ID, job.Cancelled, 10*time.Second)
	if got.Error == nil || got.Error.Code != "job.cancelled" {
		t.Fatalf("error: %+v", got.Error)
	}
	rcv.Wait(t, 10*time.Second, "fax.cancelled", func(hs []testkit.Hook) bool {
		ev := testkit.Events(hs, j.ID)
		return len(ev) == 1 && ev[0].Event == "fax.cancelled"
	})
	if r := e.c.Do(t, "DELETE", "/v1/faxes/"+j.ID, nil, "", nil); r.StatusCode != 409 {
		t.Fatalf("second cancel: %d", r.StatusCode)
	}
	if r := e.c.Do(t, "POST", "/v1/faxes/"+j.ID+"/retry", nil, "", nil); r.StatusCode != 202 {
		t.Fatalf("retry: %d", r.StatusCode)
	}
	e.waitStatus(t, j.ID, job.Delivered, 30*time.Second)
	if r := e.c.Do(t, "POST", "/v1/faxes/"+j.ID+"/retry", nil, "", nil); r.StatusCode != 409 {
		t.Fatalf("retry of a delivered fax: %d; it must never be sent twice", r.StatusCode)
	}
}

func TestCompatFaxservice(t *testing.T) {
	e := startBox(t, nil)
	rcv := testkit.NewReceiver(t)
	noToken := &testkit.Client{Base: e.c.Base}
	var out map[string]string
	noToken.Submit(t, "/faxservice/", &out, testkit.Field("fax", "99990001"), testkit.Field("faxId", "inv 7&x"),
		testkit.Field("maxRetries", "0"), testkit.Field("returnUrl", rcv.URL+"/result.php?src=shop"),
		testkit.File("file", "inv.pdf", testkit.PDF(t, 1)))
	if out["status"] == "fail" && strings.Contains(out["message"], "faxId") {
		// A faxId with a space is refused; use a plain one.
		noToken.Submit(t, "/faxservice/", &out, testkit.Field("fax", "99990001"), testkit.Field("faxId", "inv-7&x"),
			testkit.Field("maxRetries", "0"), testkit.Field("returnUrl", rcv.URL+"/result.php?src=shop"),
			testkit.File("file", "inv.pdf", testkit.PDF(t, 1)))
	}
	if out["status"] != "success" {
		t.Fatalf("faxservice: %v", out)
	}
	hs := rcv.Wait(t, 60*time.Second, "GET returnUrl", func(hs []testkit.Hook) bool { return len(hs) > 0 })
	u, _ := url.Parse(hs[0].URL)
	q := u.Query()
	if hs[0].Method != "GET" || u.Path != "/result.php" || q.Get("src") != "shop" || q.Get("fax") != "99990001" ||
		q.Get("faxId") != "inv-7&x" || q.Get("status") != "SUCCESS" {
		t.Fatalf("returnUrl call: %s %s", hs[0].Method, hs[0].URL)
	}
	noToken.Submit(t, "/faxservice/", &out, testkit.Field("fax", "12\n34"), testkit.Field("faxId", "a"),
		testkit.Field("returnUrl", rcv.URL), testkit.File("file", "inv.pdf", testkit.PDF(t, 1)))
	if out["status"] != "fail" {
		t.Fatalf("bad number accepted: %v", out)
	}
}

// TestHostileInput: every bad request gets a 4xx JSON error and leaves no
// job and no file behind.
func TestHostileInput(t *testing.T) {
	e := startBox(t, func(c *config.Config) { c.Limits.MaxUploadBytes = 200 << 10 })
	pdf := testkit.PDF(t, 1)
	ok := func(extra ...testkit.Part) []testkit.Part {
		return append([]testkit.Part{testkit.File("file", "a.pdf", pdf), testkit.Field("to", "99990001")}, extra...)
	}
	var pngBuf bytes.Buffer
	png.Encode(&pngBuf, image.NewGray(image.Rect(0, 0, 10, 10)))
	bomb := append([]byte(nil), pngBuf.Bytes()...)
	// Claim 60000x60000 in the IHDR (width at 16, height at 20), with a
	// valid CRC: a decompression bomb that only its header gives away.
	copy(bomb[16:], []byte{0, 0, 0xea, 0x60, 0, 0, 0xea, 0x60})
	binary.BigEndian.PutUint32(bomb[29:], crc32.ChecksumIEEE(bomb[12:29]))
	cases := []struct {
		name   string
		parts  []testkit.Part
		status int
		code   string
	}{
		{"LF in to", []testkit.Part{testkit.File("file", "a.pdf", pdf), testkit.Field("to", "99990001\nChannel: x")}, 400, "invalid_field"},
		{"CR in header", ok(testkit.Field("header", "x\rSetVar: y")), 400, "invalid_field"},
		{"NUL in client_ref", ok(testkit.Field("client_ref", "a\x00b")), 400, "invalid_field"},
		{"ESC in station_id", ok(testkit.Field("station_id", "\x1b[2J")), 400, "invalid_field"},
		{"dialplan text in to", []testkit.Part{testkit.File("file", "a.pdf", pdf), testkit.Field("to", "${SHELL(rm -rf /)}")}, 400, "invalid_number"},
		{"ampersand in to", []testkit.Part{testkit.File("file", "a.pdf", pdf), testkit.Field("to", "123&456")}, 400, "invalid_number"},
		{"too short to", []testkit.Part{testkit.File("file", "a.pdf", pdf), testkit.Field("to", "12")}, 400, "invalid_number"},
		{"missing to", []testkit.Part{testkit.File("file", "a.pdf", pdf)}, 400, "missing_field"},
		{"no file", []testkit.Part{testkit.Field("to", "99990001")}, 400, "missing_file"},
		{"unknown field over 1 KB", ok(testkit.Field("note", strings.Repeat("x", 1025))), 400, "field_too_long"},
		{"station_id injection", ok(testkit.Field("station_id", "a,b;c")), 400, "invalid_field"},
		{"callback not http", ok(testkit.Field("callback_url", "file:///etc/passwd")), 400, "invalid_url"},
		{"callback gopher", ok(testkit.Field("callback_url", "gopher://x")), 400, "invalid_url"},
		{"priority out of range", ok(testkit.Field("priority", "10")), 400, "invalid_field"},
		{"bad send_at", ok(testkit.Field("send_at", "tomorrow")), 400, "invalid_field"},
		{"bad resolution", ok(testkit.Field("resolution", "ultra")), 400, "invalid_field"},
		{"upload over the limit", []testkit.Part{testkit.File("file", "a.txt", bytes.Repeat([]byte("a"), 300<<10)), testkit.Field("to", "99990001")}, 413, "too_large"},
		{"binary that claims to be a PDF", []testkit.Part{testkit.File("file", "a.pdf", []byte("\x00\x01\x02\x03garbage\x00")), testkit.Field("to", "99990001")}, 415, "unsupported_document"},
		{"zip named .pdf", []testkit.Part{testkit.File("file", "a.pdf", []byte("PK\x03\x04\x14\x00\x00\x00")), testkit.Field("to", "99990001")}, 415, "unsupported_document"},
		{"truncated PDF", []testkit.Part{testkit.File("file", "a.pdf", pdf[:len(pdf)/2]), testkit.Field("to", "99990001")}, 422, "unreadable_document"},
		{"PNG decompression bomb", []testkit.Part{testkit.File("file", "a.png", bomb), testkit.Field("to", "99990001")}, 422, "unreadable_document"},
		{"broken PNG", []testkit.Part{testkit.File("file", "a.png", []byte("\x89PNG\r\n\x1a\nbroken")), testkit.Field("to", "99990001")}, 422, "unreadable_document"},
		{"no line for number", []testkit.Part{testkit.File("file", "a.pdf", pdf), testkit.Field("to", "0301234567")}, 422, "no_line_for_number"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var er struct {
				Error struct{ Code, Message, Field string }
			}
			resp := e.c.Submit(t, "/v1/faxes", &er, c.parts...)
			if resp.StatusCode != c.status || er.Error.Code != c.code || er.Error.Message == "" {
				t.Fatalf("got %d %+v; want %d %s", resp.StatusCode, er.Error, c.status, c.code)
			}
		})
	}
	var list struct{ Items []job.Job }
	e.c.Do(t, "GET", "/v1/faxes", nil, "", &list)
	if len(list.Items) != 0 {
		t.Fatalf("%d jobs were created by bad requests", len(list.Items))
	}
	entries, _ := os.ReadDir(filepath.Join(e.dir, "documents"))
	if len(entries) != 0 {
		t.Fatalf("bad requests left %d document directories", len(entries))
	}
	// Wrong token, no token.
	bad := &testkit.Client{Base: e.c.Base, Token: "nope-nope-nope"}
	if r := bad.Do(t, "GET", "/v1/faxes", nil, "", nil); r.StatusCode != 401 {
		t.Fatalf("wrong token: %d", r.StatusCode)
	}
	// PDFs that pass the cheap checks but that ghostscript refuses, or that
	// claim thousands of pages (a page-count bomb), are accepted, then fail
	// as document errors before any dial; the job record stays.
	var kids strings.Builder
	for i := 0; i < 5000; i++ {
		kids.WriteString("3 0 R ")
	}
	bombPDF := []byte("%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [" + kids.String() +
		"] /Count 5000 >> endobj\n3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
	noPages := []byte("%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
	garbage := append([]byte("%PDF-1.7\n"), bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 4096)...)
	garbage = append(garbage, []byte("\n%%EOF\n")...)
	for name, c := range map[string]struct {
		pdf  []byte
		code string
	}{"page bomb": {bombPDF, "document.too_many_pages"}, "no pages": {noPages, "document.unreadable"}, "garbage": {garbage, "document.unreadable"}} {
		var j job.Job
		if r := e.c.Submit(t, "/v1/faxes", &j, testkit.File("file", "h.pdf", c.pdf), testkit.Field("to", "99990001")); r.StatusCode != 202 {
			t.Fatalf("%s: %d", name, r.StatusCode)
		}
		got := e.waitStatus(t, j.ID, job.Failed, 60*time.Second)
		if got.Error == nil || string(got.Error.Code) != c.code || len(got.Attempts) != 0 {
			t.Errorf("%s: error %+v, %d attempts; want %s before dialling", name, got.Error, len(got.Attempts), c.code)
		}
	}
}

func TestDiskFull(t *testing.T) {
	e := startBox(t, nil)
	var j job.Job
	e.c.Submit(t, "/v1/faxes", &j, testkit.File("file", "a.txt", []byte("kept")), testkit.Field("to", "99990001"))
	e.waitStatus(t, j.ID, job.Delivered, 30*time.Second)
	// Now pretend the disk is full: reserve more than there is.
	e.box.API.Cfg.Limits.MinFreeBytes = 1 << 62
	var er struct{ Error struct{ Code string } }
	resp := e.c.Submit(t, "/v1/faxes", &er, testkit.File("file", "a.txt", []byte("x")), testkit.Field("to", "99990001"))
	if resp.StatusCode != http.StatusInsufficientStorage || er.Error.Code != "disk_full" {
		t.Fatalf("full disk: %d %+v", resp.StatusCode, er)
	}
	var got job.Job
	e.c.Do(t, "GET", "/v1/faxes/"+j.ID, nil, "", &got)
	if got.Status != job.Delivered {
		t.Fatalf("the accepted job changed: %s", got.Status)
	}
}

func TestEventsAndStatus(t *testing.T) {
	e := startBox(t, nil)
	req, _ := http.NewRequest("GET", e.c.Base+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	var j job.Job
	e.c.Submit(t, "/v1/faxes", &j, testkit.File("file", "a.txt", []byte("sse")), testkit.Field("to", "99990001"))
	seen := map[string]bool{}
	buf := make([]byte, 64<<10)
	var acc strings.Builder
	deadline := time.Now().Add(30 * time.Second)
	for !seen["delivered"] && time.Now().Before(deadline) {
		n, err := resp.Body.Read(buf)
		if err != nil {
			break
		}
		acc.Write(buf[:n])
		for _, block := range strings.Split(acc.String(), "\n\n") {
			for _, line := range strings.Split(block, "\n") {
				if d, ok := strings.CutPrefix(line, "data: "); ok {
					var x job.Job
					if json.Unmarshal([]byte(d), &x) == nil && x.ID == j.ID {
						seen[string(x.Status)] = true
					}
				}
			}
		}
	}
	for _, s := range []string{"converting", "ready", "dialing", "sending", "delivered"} {
		if !seen[s] {
			t.Errorf("no SSE event for status %s (saw %v)", s, seen)
		}
	}
	var st struct {
		Version string
		Lines   []struct{ Group, State string }
		Jobs    map[string]int
	}
	e.c.Do(t, "GET", "/v1/status", nil, "", &st)
	if st.Version != "test" || len(st.Lines) != 4 || st.Lines[0].Group != "test" || st.Jobs["stored"] != 1 {
		t.Fatalf("status: %+v", st)
	}
	r := e.c.Do(t, "GET", "/metrics", nil, "", nil)
	m := new(bytes.Buffer)
	m.ReadFrom(r.Body)
	if !strings.Contains(m.String(), "faxbox_jobs_stored 1\n") {
		t.Fatalf("metrics:\n%s", m)
	}
	if r := (&testkit.Client{Base: e.c.Base}).Do(t, "GET", "/healthz", nil, "", nil); r.StatusCode != 200 {
		t.Fatalf("healthz: %d", r.StatusCode)
	}
}

func TestImagesAndTextConvert(t *testing.T) {
	e := startBox(t, nil)
	img := image.NewRGBA(image.Rect(0, 0, 400, 300))
	for x := 0; x < 400; x++ {
		img.Set(x, x*3/4, color.Black)
	}
	var pngBuf bytes.Buffer
	png.Encode(&pngBuf, img)
	var j job.Job
	r := e.c.Submit(t, "/v1/faxes", &j,
		testkit.File("file", "cover.txt", []byte("Cover page\nÄrger über Umlaute\n")),
		testkit.File("file", "scan.bin", pngBuf.Bytes()),
		testkit.File("file", "doc.pdf", testkit.PDF(t, 2)),
		testkit.Field("to", "99990001"), testkit.Field("resolution", "standard"))
	if r.StatusCode != 202 {
		t.Fatalf("submit: %d", r.StatusCode)
	}
	got := e.waitStatus(t, j.ID, job.Delivered, 60*time.Second)
	if got.Pages != 4 || got.Files[1].Type != "png" || got.Files[0].Type != "text" {
		t.Fatalf("pages %d files %+v", got.Pages, got.Files)
	}
}

func TestSecondInstanceRefused(t *testing.T) {
	e := startBox(t, nil)
	cfg := e.box.Cfg
	_, err := Open(context.Background(), cfg, Options{})
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second box on the same data dir: %v", err)
	}
	_ = fmt.Sprint()
}

func TestWebhookRetriedUntilAccepted(t *testing.T) {
	e := startBox(t, nil)
	rcv := testkit.NewReceiver(t)
	rcv.FailFirst = 2
	var j job.Job
	e.c.Submit(t, "/v1/faxes", &j, testkit.File("file", "a.txt", []byte("x")), testkit.Field("to", "99990001"), testkit.Field("callback_url", rcv.URL))
	start := time.Now()
	hs := rcv.Wait(t, 30*time.Second, "the delivered webhook after two refusals", func(hs []testkit.Hook) bool { return len(hs) == 1 })
	// first retry after 100ms, second after 200ms.
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Errorf("accepted after %s: retries did not back off", el)
	}
	ev := testkit.Events(hs, j.ID)
	if len(ev) != 1 || ev[0].Event != "fax.delivered" {
		t.Fatalf("events: %+v", ev)
	}
	for deadline := time.Now().Add(5 * time.Second); e.box.Sender.Pending() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries still pending", e.box.Sender.Pending())
		}
	}
	ob, _ := e.box.Store.Outbox()
	if len(ob) != 0 {
		t.Fatalf("%d deliveries left in the outbox", len(ob))
	}
}

func TestRetentionPurgesDocumentsKeepsRecord(t *testing.T) {
	e := startBox(t, func(c *config.Config) { c.Retention = job.Duration(50 * time.Millisecond) })
	var j job.Job
	e.c.Submit(t, "/v1/faxes", &j, testkit.File("file", "a.txt", []byte("x")), testkit.Field("to", "99990001"))
	e.waitStatus(t, j.ID, job.Delivered, 30*time.Second)
	if r := e.c.Do(t, "GET", "/v1/faxes/"+j.ID+"/document?format=tiff", nil, "", nil); r.StatusCode != 200 {
		t.Fatalf("document before the purge: %d", r.StatusCode)
	}
	time.Sleep(100 * time.Millisecond)
	if n, err := e.box.Store.Purge(time.Now()); n != 1 || err != nil {
		t.Fatalf("purge: %d %v", n, err)
	}
	if _, err := os.Stat(e.box.Store.DocDir(j.ID)); !os.IsNotExist(err) {
		t.Fatal("documents still on disk")
	}
	var got job.Job
	if r := e.c.Do(t, "GET", "/v1/faxes/"+j.ID, nil, "", &got); r.StatusCode != 200 || got.Status != job.Delivered || !got.Purged {
		t.Fatalf("record after purge: %d %+v", r.StatusCode, got)
	}
	if r := e.c.Do(t, "GET", "/v1/faxes/"+j.ID+"/document?format=pdf", nil, "", nil); r.StatusCode != http.StatusGone {
		t.Fatalf("document after purge: %d", r.StatusCode)
	}
}

func TestSendAtWaits(t *testing.T) {
	e := startBox(t, nil)
	at := time.Now().Add(1500 * time.Millisecond).Truncate(time.Second).Add(time.Second)
	var j job.Job
	e.c.Submit(t, "/v1/faxes", &j, testkit.File("file", "a.txt", []byte("later")), testkit.Field("to", "99990001"),
		testkit.Field("send_at", at.Format(time.RFC3339)))
	e.waitStatus(t, j.ID, job.Ready, 20*time.Second)
	got := e.waitStatus(t, j.ID, job.Delivered, 30*time.Second)
	if got.Attempts[0].StartedAt.Before(at) {
		t.Fatalf("dialled at %s, before send_at %s", got.Attempts[0].StartedAt, at)
	}
}
