package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/internal/testkit"
	"github.com/faxbox/faxbox/internal/testkit/testbox"
)

// apiErr is the body of an error answer.
type apiErr struct {
	Error struct{ Code, Message, Field string }
}

// compatAnswer is the body of a /faxservice/ answer.
type compatAnswer struct{ Status, Code, Message string }

// noDocuments fails when a refused request left a document directory.
func noDocuments(t *testing.T, e *testbox.Env) {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(e.Dir, "documents"))
	if len(entries) != 0 {
		t.Fatalf("refused requests left %d document directories", len(entries))
	}
}

// expectErr checks an error answer's status, code and field.
func expectErr(t *testing.T, what string, resp *http.Response, er apiErr, status int, code, field string) {
	t.Helper()
	if resp.StatusCode != status || er.Error.Code != code || er.Error.Field != field || er.Error.Message == "" {
		t.Errorf("%s: %d %+v; want %d %s (field %q)", what, resp.StatusCode, er.Error, status, code, field)
	}
}

func fax(extra ...testkit.Part) []testkit.Part {
	return append([]testkit.Part{testkit.File("file", "a.txt", []byte("hello\n")), testkit.Field("to", "99990001")}, extra...)
}

func classic(faxID string, doc testkit.Part, extra ...testkit.Part) []testkit.Part {
	return append([]testkit.Part{testkit.Field("fax", "99990001"), testkit.Field("faxId", faxID),
		testkit.Field("returnUrl", "http://192.0.2.7/result.php"), doc}, extra...)
}

// Item 12: a typo in a field name is a 400 naming the field, on /v1/faxes
// and on multipart /v1/calls; the classic endpoint drops fields it does not
// read, as the classic script did.
func TestUnknownFieldRefused(t *testing.T) {
	e := testbox.Start(t, nil)
	var er apiErr
	resp := e.C.Submit(t, "/v1/faxes", &er, fax(testkit.Field("max_attempt", "2"))...)
	expectErr(t, "/v1/faxes max_attempt", resp, er, 400, "unknown_field", "max_attempt")
	if !strings.Contains(er.Error.Message, "max_attempts") {
		t.Errorf("the message does not list the known fields: %q", er.Error.Message)
	}
	er = apiErr{}
	resp = e.C.Submit(t, "/v1/calls", &er, testkit.Field("kind", "message"), testkit.Field("to", "99990001"),
		testkit.Field("repat", "2"), testkit.File("play", "a.wav", wav()))
	expectErr(t, "/v1/calls repat", resp, er, 400, "unknown_field", "repat")
	noDocuments(t, e)
	if n := len(e.Jobs(t, job.KindFax)) + len(e.Jobs(t, job.KindCall)); n != 0 {
		t.Fatalf("%d jobs made by refused requests", n)
	}
	var out compatAnswer
	e.C.Submit(t, "/faxservice/", &out, classic("order-1", testkit.File("file", "a.txt", []byte("x")), testkit.Field("submit", "Send"))...)
	if out.Status != "success" {
		t.Fatalf("/faxservice/ with an extra field: %+v", out)
	}
}

// wav is a tiny valid WAV header (the content is never played here).
func wav() []byte {
	return append([]byte("RIFF\x24\x00\x00\x00WAVEfmt "), make([]byte, 28)...)
}

// Item 13: returnUrl follows the same rule as callback_url: no credentials.
func TestReturnURLWithCredentialsRefused(t *testing.T) {
	e := testbox.Start(t, nil)
	var out compatAnswer
	e.C.Submit(t, "/faxservice/", &out, testkit.Field("fax", "99990001"), testkit.Field("faxId", "cred-1"),
		testkit.Field("returnUrl", "http://shop:s3cret@192.0.2.7/result.php"), testkit.File("file", "a.txt", []byte("x")))
	if out.Status != "fail" || out.Code != "invalid_url" || strings.Contains(out.Message, "s3cret") {
		t.Fatalf("returnUrl with credentials: %+v", out)
	}
	if n := len(e.Jobs(t, job.KindFax)); n != 0 {
		t.Fatalf("%d jobs stored", n)
	}
	noDocuments(t, e)
}

// Item 14: a file whose name or Content-Type names a supported type other
// than its content's is refused; a generic declaration is typed by content.
func TestDeclaredTypeMismatch(t *testing.T) {
	e := testbox.Start(t, nil)
	errorPage := []byte("<html><body><h1>500 Internal Server Error</h1></body></html>\n")
	pdf := testkit.PDF(t, 1)
	for _, c := range []struct {
		name string
		part testkit.Part
	}{
		{"error page as invoice.pdf", testkit.Part{Name: "file", FileName: "invoice.pdf", ContentType: "application/pdf", Data: errorPage}},
		{"error page as application/pdf", testkit.Part{Name: "file", FileName: "invoice", ContentType: "application/pdf", Data: errorPage}},
		{"error page named .pdf, generic type", testkit.File("file", "invoice.PDF", errorPage)},
		{"PDF named .png", testkit.Part{Name: "file", FileName: "scan.png", ContentType: "image/png", Data: pdf}},
		{"PDF as text/plain", testkit.Part{Name: "file", FileName: "letter", ContentType: "text/plain; charset=utf-8", Data: pdf}},
	} {
		var er apiErr
		resp := e.C.Submit(t, "/v1/faxes", &er, testkit.Field("to", "99990001"), c.part)
		expectErr(t, c.name, resp, er, 415, "document_type_mismatch", "file")
	}
	var out compatAnswer
	e.C.Submit(t, "/faxservice/", &out, classic("inv-9", testkit.Part{Name: "file", FileName: "invoice.pdf", ContentType: "application/pdf", Data: errorPage})...)
	if out.Status != "fail" || out.Code != "document_type_mismatch" {
		t.Fatalf("/faxservice/ error page as invoice.pdf: %+v", out)
	}
	noDocuments(t, e)
	// Generic or matching declarations are fine.
	for _, p := range []testkit.Part{
		testkit.File("file", "upload.bin", pdf),
		{Name: "file", FileName: "invoice.pdf", ContentType: "application/pdf", Data: pdf},
		{Name: "file", FileName: "note.txt", ContentType: "text/plain", Data: errorPage},
	} {
		var j job.Job
		if resp := e.C.Submit(t, "/v1/faxes", &j, testkit.Field("to", "99990001"), p); resp.StatusCode != 202 {
			t.Errorf("%s (%s): %d", p.FileName, p.ContentType, resp.StatusCode)
		}
	}
}

// Item 17: a faxId sent again with another document is a new job; the same
// request again is accepted once.
func TestFaxserviceReusedFaxID(t *testing.T) {
	e := testbox.Start(t, nil)
	send := func(doc string) {
		t.Helper()
		var out compatAnswer
		e.C.Submit(t, "/faxservice/", &out, classic("order-77", testkit.File("file", "invoice.txt", []byte(doc)))...)
		if out.Status != "success" {
			t.Fatalf("faxservice %q: %+v", doc, out)
		}
	}
	send("invoice 77, first version\n")
	send("invoice 77, corrected\n")
	send("invoice 77, corrected\n")
	jobs := e.Jobs(t, job.KindFax)
	if len(jobs) != 2 {
		t.Fatalf("%d jobs, want 2 (the corrected invoice is a new job, its resubmission is not)", len(jobs))
	}
	for _, j := range jobs {
		if j.Compat == nil || j.Compat.FaxID != "order-77" {
			t.Errorf("job %s: compat %+v", j.ID, j.Compat)
		}
	}
}

// Item 22: play is never taken from a JSON body: a path there is refused
// before anything reads it, and the error says nothing about the file system.
func TestCallJSONPlayRefused(t *testing.T) {
	e := testbox.Start(t, nil)
	for _, play := range []string{"../../../../etc/passwd", "/etc/hostname", "in-00.wav"} {
		body := fmt.Sprintf(`{"kind":"message","to":"99990001","play":%q}`, play)
		var er apiErr
		resp := e.C.Do(t, "POST", "/v1/calls", strings.NewReader(body), "application/json", &er)
		expectErr(t, "play "+play, resp, er, 400, "invalid_field", "play")
	}
	if n := len(e.Jobs(t, job.KindCall)); n != 0 {
		t.Fatalf("%d calls stored", n)
	}
}

// Item 23: a send_at or expire_at too far ahead is a 400 naming the field,
// never a 500 with internal text.
func TestFarFutureTimes(t *testing.T) {
	e := testbox.Start(t, nil)
	for _, f := range []testkit.Part{testkit.Field("send_at", "9999-12-31T00:00:00Z"), testkit.Field("expire_at", "9999-12-31T23:59:59Z")} {
		var er apiErr
		resp := e.C.Submit(t, "/v1/faxes", &er, fax(f)...)
		expectErr(t, "/v1/faxes "+f.Name, resp, er, 400, "invalid_field", f.Name)
	}
	var er apiErr
	resp := e.C.Do(t, "POST", "/v1/calls", strings.NewReader(`{"kind":"message","to":"99990001","say":"hi","send_at":"9999-12-31T00:00:00Z"}`), "application/json", &er)
	expectErr(t, "/v1/calls send_at", resp, er, 400, "invalid_field", "send_at")
	noDocuments(t, e)
	// A month ahead is fine.
	var j job.Job
	if resp := e.C.Submit(t, "/v1/faxes", &j, fax(testkit.Field("send_at", time.Now().Add(30*24*time.Hour).Format(time.RFC3339)))...); resp.StatusCode != 202 {
		t.Fatalf("send_at a month ahead: %d", resp.StatusCode)
	}
}

// Item 24: result URLs may not point at the box itself unless configured,
// on every entry point.
func TestResultURLNotTheBox(t *testing.T) {
	e := testbox.Start(t, nil)
	local := []string{"http://127.0.0.1:5038/", "http://127.0.0.2/x", "http://[::1]:8080/", "http://169.254.169.254/latest/meta-data/",
		"http://[fe80::1]/", "http://0.0.0.0:5038/", "http://[::ffff:127.0.0.1]/", "http://localhost:5038/", "http://a.localhost/",
		"http://127.1/", "http://2130706433/", "http://0x7f000001/"}
	for _, u := range local {
		var er apiErr
		resp := e.C.Submit(t, "/v1/faxes", &er, fax(testkit.Field("callback_url", u))...)
		expectErr(t, "callback_url "+u, resp, er, 400, "invalid_url", "callback_url")
		er = apiErr{}
		resp = e.C.Do(t, "POST", "/v1/calls", strings.NewReader(`{"kind":"message","to":"99990001","say":"hi","callback_url":"`+u+`"}`), "application/json", &er)
		expectErr(t, "call callback_url "+u, resp, er, 400, "invalid_url", "callback_url")
		var out compatAnswer
		e.C.Submit(t, "/faxservice/", &out, testkit.Field("fax", "99990001"), testkit.Field("faxId", "l-1"), testkit.Field("returnUrl", u), testkit.File("file", "a.txt", []byte("x")))
		if out.Status != "fail" || out.Code != "invalid_url" {
			t.Errorf("returnUrl %s: %+v", u, out)
		}
	}
	noDocuments(t, e)
	var j job.Job
	if resp := e.C.Submit(t, "/v1/faxes", &j, fax(testkit.Field("callback_url", "http://192.0.2.7:8000/hook"))...); resp.StatusCode != 202 {
		t.Fatalf("a LAN receiver: %d", resp.StatusCode)
	}
	open := testbox.Start(t, func(c *config.Config) { c.Webhook.AllowLoopback = true })
	if resp := open.C.Submit(t, "/v1/faxes", &j, fax(testkit.Field("callback_url", "http://127.0.0.1:9000/hook"))...); resp.StatusCode != 202 {
		t.Fatalf("loopback with webhook.allow_loopback: %d", resp.StatusCode)
	}
}

// Item 24: an agent, however short, may not be a denied prefix; JSON with
// trailing data is refused.
func TestCallAgentDenyAndTrailingJSON(t *testing.T) {
	e := testbox.Start(t, nil)
	for _, agent := range []string{"00", "0900", "118", "1180"} {
		var er apiErr
		resp := e.C.Do(t, "POST", "/v1/calls", strings.NewReader(`{"kind":"click2call","agent":"`+agent+`","to":"99990001"}`), "application/json", &er)
		expectErr(t, "agent "+agent, resp, er, 422, "destination_not_allowed", "agent")
	}
	for _, body := range []string{
		`{"kind":"message","to":"99990001","say":"hi"} {"kind":"message","to":"99990002","say":"hi"}`,
		`{"kind":"message","to":"99990001","say":"hi"}}`,
		`{"kind":"message","to":"99990001","say":"hi"} trailing`,
	} {
		var er apiErr
		resp := e.C.Do(t, "POST", "/v1/calls", strings.NewReader(body), "application/json", &er)
		expectErr(t, "trailing "+body, resp, er, 400, "invalid_request", "")
	}
	if n := len(e.Jobs(t, job.KindCall)); n != 0 {
		t.Fatalf("%d calls stored", n)
	}
	var j job.Job
	if resp := e.C.Do(t, "POST", "/v1/calls", strings.NewReader(`{"kind":"click2call","agent":"20","to":"99990001"}`+"\n"), "application/json", &j); resp.StatusCode != 202 {
		t.Fatalf("agent 20: %d", resp.StatusCode)
	}
}

// getCallback sends GET /callback from 127.0.0.1 (an allowed address) with
// the given headers and no token unless one is among them.
func getCallback(t *testing.T, e *testbox.Env, query string, hdr map[string]string) (*http.Response, apiErr) {
	t.Helper()
	req, _ := http.NewRequest("GET", e.C.Base+"/callback?"+query, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var er apiErr
	json.NewDecoder(resp.Body).Decode(&er)
	return resp, er
}

// Item 24: /callback checks the free disk, and by default refuses what a
// browser sends for another site's page (an <img src> there places no call).
func TestCallbackCompatGuards(t *testing.T) {
	e := testbox.Start(t, nil)
	q := "num=99990001&cid=20"
	for name, hdr := range map[string]map[string]string{
		"img from another site":   {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "image", "Sec-Fetch-Mode": "no-cors"},
		"same-site subdomain":     {"Sec-Fetch-Site": "same-site"},
		"old browser, Referer":    {"Referer": "http://evil.example/page.html"},
		"fetch with other Origin": {"Origin": "http://evil.example"},
	} {
		resp, er := getCallback(t, e, q, hdr)
		expectErr(t, name, resp, er, 403, "cross_site_request", "")
	}
	if n := len(e.Jobs(t, job.KindCall)); n != 0 {
		t.Errorf("cross-site requests placed %d calls", n)
	}
	for name, hdr := range map[string]map[string]string{
		"script or server":      nil,
		"opened directly":       {"Sec-Fetch-Site": "none"},
		"the box's own page":    {"Sec-Fetch-Site": "same-origin", "Referer": e.C.Base + "/"},
		"cross-site with token": {"Sec-Fetch-Site": "cross-site", "Authorization": "Bearer " + testbox.Token},
	} {
		if resp, er := getCallback(t, e, q, hdr); resp.StatusCode != 202 {
			t.Errorf("%s: %d %+v", name, resp.StatusCode, er.Error)
		}
	}
	e.Box.API.Cfg.Limits.MinFreeBytes = 1 << 62
	resp, er := getCallback(t, e, q, nil)
	expectErr(t, "full disk", resp, er, 507, "disk_full", "")

	tok := testbox.Start(t, func(c *config.Config) { c.Compat.CallbackAuth = config.CallbackToken })
	resp, er = getCallback(t, tok, q, nil)
	expectErr(t, "callback_auth token, no token", resp, er, 401, "unauthorized", "")
	classicBox := testbox.Start(t, func(c *config.Config) { c.Compat.CallbackAuth = config.CallbackAddress })
	if resp, er := getCallback(t, classicBox, q, map[string]string{"Sec-Fetch-Site": "cross-site"}); resp.StatusCode != 202 {
		t.Errorf("callback_auth address: %d %+v", resp.StatusCode, er.Error)
	}
}

// Item 24: error messages never carry the box's paths. An upload that breaks
// off inside its file used to answer "could not read the upload: store:
// write /…/documents/…/in-00.txt: unexpected EOF".
func TestErrorsHideServerPaths(t *testing.T) {
	e := testbox.Start(t, nil)
	body, ct := testkit.Multipart(testkit.Field("to", "99990001"), testkit.File("file", "a.txt", bytes.Repeat([]byte("text "), 2000)))
	cut := body.Bytes()[:body.Len()-200]
	var er apiErr
	resp := e.C.Do(t, "POST", "/v1/faxes", bytes.NewReader(cut), ct, &er)
	if resp.StatusCode != 400 || strings.Contains(er.Error.Message, e.Dir) || strings.Contains(er.Error.Message, "/") {
		t.Fatalf("broken upload: %d %+v (data dir %s)", resp.StatusCode, er.Error, e.Dir)
	}
	noDocuments(t, e)
}

// Item 20: a request with more parts than any endpoint takes is cut at once,
// on the classic endpoint too, where unknown fields are otherwise dropped.
func TestTooManyParts(t *testing.T) {
	e := testbox.Start(t, nil)
	parts := []testkit.Part{testkit.Field("fax", "99990001"), testkit.Field("faxId", "many-1"), testkit.Field("returnUrl", "http://192.0.2.7/r")}
	for i := 0; i < 200; i++ {
		parts = append(parts, testkit.Field(fmt.Sprintf("x%d", i), strings.Repeat("y", 1000)))
	}
	parts = append(parts, testkit.File("file", "a.txt", []byte("x")))
	var out compatAnswer
	e.C.Submit(t, "/faxservice/", &out, parts...)
	if out.Status != "fail" || out.Code != "too_many_fields" {
		t.Fatalf("200 extra fields: %+v", out)
	}
	// One part's headers past 16 KB.
	body := "--b\r\nContent-Disposition: form-data; name=\"to\"\r\nX-Pad: " + strings.Repeat("p", 20<<10) + "\r\n\r\n99990001\r\n--b--\r\n"
	var er apiErr
	resp := e.C.Do(t, "POST", "/v1/faxes", strings.NewReader(body), "multipart/form-data; boundary=b", &er)
	expectErr(t, "20 KB part header", resp, er, 400, "invalid_request", "")
	noDocuments(t, e)
}

// Item 20: when every upload slot is taken, a submission waits a few
// seconds, then gets 503 busy with Retry-After; the slot frees when its
// upload ends.
func TestUploadSlotsFull(t *testing.T) {
	e := testbox.Start(t, func(c *config.Config) {
		c.Limits.MaxConcurrentUploads = 1
		c.Limits.BodyTimeout = job.Duration(time.Minute) // the held upload is not cut meanwhile
	})
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.C.Base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Hold the one slot: headers and the start of a body.
	fmt.Fprintf(conn, "POST /v1/faxes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n", testbox.Token)
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	var er apiErr
	resp := e.C.Submit(t, "/v1/faxes", &er, fax()...)
	expectErr(t, "second upload", resp, er, 503, "busy", "")
	if resp.Header.Get("Retry-After") == "" || time.Since(start) < 4*time.Second {
		t.Errorf("503 after %s, Retry-After %q; want a wait of about 5 s and the header", time.Since(start), resp.Header.Get("Retry-After"))
	}
	var out compatAnswer
	resp = e.C.Submit(t, "/faxservice/", &out, classic("busy-1", testkit.File("file", "a.txt", []byte("x")))...)
	if resp.StatusCode != 503 || out.Status != "fail" || out.Code != "busy" {
		t.Errorf("/faxservice/ while full: %d %+v", resp.StatusCode, out)
	}
	conn.Close()
	var j job.Job
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp := e.C.Submit(t, "/v1/faxes", &j, fax()...); resp.StatusCode == 202 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the slot was not freed: %d", resp.StatusCode)
		}
	}
}

// Item 21: a body slower than limits.body_min_rate is cut with 408 after
// limits.body_timeout.
func TestSlowBodyCut(t *testing.T) {
	e := testbox.Start(t, func(c *config.Config) { c.Limits.BodyTimeout = job.Duration(time.Second) })
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.C.Base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /faxservice/ HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n")
	start := time.Now()
	got := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(conn)
		got <- string(b)
	}()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case answer := <-got:
			if !strings.Contains(answer, `"request_timeout"`) || time.Since(start) > 5*time.Second {
				t.Fatalf("after %s: %q", time.Since(start), answer)
			}
			return
		case <-tick.C:
			conn.Write([]byte("--b\r\n")[:2]) // 10 bytes/s
			if time.Since(start) > 10*time.Second {
				t.Fatal("a body trickling at 10 bytes/s is still read after 10 s")
			}
		}
	}
}

// A multipart call repeated with its client_ref is answered with the
// stored call and leaves no second copy of its recording; a client_ref
// reused for other content is refused, also without a copy.
func TestCallRecordingRepeatLeavesNoCopy(t *testing.T) {
	e := testbox.Start(t, nil)
	parts := func(say string) []testkit.Part {
		p := []testkit.Part{testkit.Field("kind", "message"), testkit.Field("to", "99990001"), testkit.Field("client_ref", "rec-1"),
			testkit.File("play", "a.wav", wav())}
		if say != "" {
			p = append(p, testkit.Field("agent", say))
		}
		return p
	}
	var first job.Job
	if resp := e.C.Submit(t, "/v1/calls", &first, parts("")...); resp.StatusCode != 202 {
		t.Fatalf("first call: HTTP %d", resp.StatusCode)
	}
	var again job.Job
	if resp := e.C.Submit(t, "/v1/calls", &again, parts("")...); resp.StatusCode != 200 || again.ID != first.ID {
		t.Fatalf("repeat: HTTP %d, id %s (first %s)", resp.StatusCode, again.ID, first.ID)
	}
	var er apiErr
	resp := e.C.Submit(t, "/v1/calls", &er, parts("99990002")...)
	expectErr(t, "client_ref reused", resp, er, 409, "client_ref_conflict", "client_ref")
	entries, _ := os.ReadDir(filepath.Join(e.Dir, "documents"))
	if len(entries) != 1 || entries[0].Name() != first.ID {
		var names []string
		for _, d := range entries {
			names = append(names, d.Name())
		}
		t.Fatalf("document directories %v; want only the stored call's %s", names, first.ID)
	}
}
