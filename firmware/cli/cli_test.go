package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
)

const token = "cli-test-token"

// fakeBox is an httptest stand-in for the box's API: it records what the
// CLI asks and answers from its fields.
type fakeBox struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	requests []string            // "METHOD /path?query"
	fields   map[string]string   // the last submission's text fields
	files    map[string][]byte   // the last submission's files by name
	jobs     map[string]*job.Job // GET /v1/faxes/{id}
	events   []string            // SSE events sent after a submission ("type\ndata")
	noEvents bool                // /v1/events answers 404
	answer   map[string]apiErr   // "METHOD /path" → error answer
	submit   chan struct{}       // closed by the first submission
	polls    int                 // GET /v1/faxes/{id} answered
	routes   http.Handler        // when set, answers every request with a token
}

// handle makes h answer the requests (with a token) from now on.
func (f *fakeBox) handle(h http.Handler) {
	f.mu.Lock()
	f.routes = h
	f.mu.Unlock()
}

type apiErr struct {
	status      int
	code, field string
}

func newFakeBox(t *testing.T) *fakeBox {
	f := &fakeBox{t: t, jobs: map[string]*job.Job{}, answer: map[string]apiErr{}, submit: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/", f.serve)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeBox) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
	ae, bad := f.answer[r.Method+" "+r.URL.Path]
	routes := f.routes
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+token {
		ae, bad = apiErr{401, "unauthorized", ""}, true
	}
	if routes != nil && !bad {
		routes.ServeHTTP(w, r)
		return
	}
	if bad {
		writeJSON(w, ae.status, map[string]any{"error": map[string]string{"code": ae.code, "message": "the " + ae.code + " message", "field": ae.field}})
		return
	}
	switch {
	case r.Method == "POST" && r.URL.Path == "/v1/faxes":
		f.create(w, r)
	case r.Method == "GET" && r.URL.Path == "/v1/events":
		f.stream(w, r)
	case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/v1/faxes/"):
		f.mu.Lock()
		var j *job.Job
		if stored := f.jobs[strings.TrimPrefix(r.URL.Path, "/v1/faxes/")]; stored != nil {
			j = stored.Clone()
		}
		f.polls++
		f.mu.Unlock()
		if j == nil {
			writeJSON(w, 404, map[string]any{"error": map[string]string{"code": "not_found", "message": "no such job"}})
			return
		}
		writeJSON(w, 200, j)
	case r.Method == "GET" && r.URL.Path == "/v1/lines":
		writeJSON(w, 200, map[string]any{"lines": []dialler.LineState{{Group: "test", Index: 1, State: dialler.LineSending, JobID: "fax_1", To: "99990001", Page: 2, Pages: 3, Healthy: true}}})
	default:
		writeJSON(w, 404, map[string]any{"error": map[string]string{"code": "not_found", "message": "no such endpoint: " + r.Method + " " + r.URL.Path}})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (f *fakeBox) create(w http.ResponseWriter, r *http.Request) {
	mr, err := r.MultipartReader()
	if err != nil {
		f.t.Errorf("submission: %v", err)
		return
	}
	fields, files := map[string]string{}, map[string][]byte{}
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(p)
		if p.FileName() != "" {
			files[p.FileName()] = b
		} else {
			fields[p.FormName()] = string(b)
		}
	}
	j := &job.Job{ID: "fax_1", Kind: job.KindFax, To: fields["to"], Status: job.Queued, MaxAttempts: 3, CreatedAt: time.Now()}
	f.mu.Lock()
	f.fields, f.files = fields, files
	f.jobs[j.ID] = j
	f.mu.Unlock()
	close(f.submit)
	writeJSON(w, 202, j)
}

// stream serves the SSE stream: after the submission, the scripted events.
func (f *fakeBox) stream(w http.ResponseWriter, r *http.Request) {
	if f.noEvents {
		writeJSON(w, 404, map[string]any{"error": map[string]string{"code": "not_found", "message": "no such endpoint"}})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	fmt.Fprint(w, ": faxbox events\nretry: 2000\n\n")
	w.(http.Flusher).Flush()
	select {
	case <-f.submit:
	case <-r.Context().Done():
		return
	}
	for i, ev := range f.events {
		typ, data, _ := strings.Cut(ev, "\n")
		fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", i+1, typ, data)
		w.(http.Flusher).Flush()
	}
	<-r.Context().Done()
}

func (f *fakeBox) requested(prefix string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.requests {
		if strings.HasPrefix(r, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// jobEvent and lineEvent script SSE events.
func jobEvent(t *testing.T, j job.Job) string {
	j.ID, j.Kind, j.To, j.MaxAttempts = "fax_1", job.KindFax, "99990001", 3
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	return "job\n" + string(b)
}

func lineEvent(t *testing.T, ls dialler.LineState) string {
	b, err := json.Marshal(ls)
	if err != nil {
		t.Fatal(err)
	}
	return "line\n" + string(b)
}

// run runs the CLI against f with env (FAXBOX_TOKEN set unless given).
func run(t *testing.T, f *fakeBox, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	if env == nil {
		env = map[string]string{}
	}
	if _, ok := env["FAXBOX_TOKEN"]; !ok {
		env["FAXBOX_TOKEN"] = token
	}
	if _, ok := env["FAXBOX_URL"]; !ok && f != nil {
		env["FAXBOX_URL"] = f.srv.URL
	}
	if _, ok := env["HOME"]; !ok {
		env["HOME"] = t.TempDir() // no config file unless a test writes one
	}
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code = Run(ctx, args[0], args[1:], Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }})
	return code, out.String(), errb.String()
}

func tempFile(t *testing.T, name, content string) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSendFields: only the options given are sent, under their API names,
// +DURATION becomes an RFC 3339 time, flags may follow the files, and the
// job id is printed.
func TestSendFields(t *testing.T) {
	f := newFakeBox(t)
	a, b := tempFile(t, "a.txt", "first"), tempFile(t, "b.txt", "second")
	before := time.Now()
	code, out, errs := run(t, f, nil, "send", "-to", "+4930123", "-max-attempts", "5", "-resolution", "superfine",
		"-header", "ACME %n/%N", "-send-at", "+30m", a, "-retry-interval", "90s", b, "-callback-url", "http://192.0.2.1/h",
		"-client-ref", "inv-7", "-priority", "9", "-page-size", "letter", "-ecm", "off", "-t38", "on", "-station-id", "ACME", "-line-group", "trunk", "-expire-at", "2030-01-02T03:04:05Z")
	if code != ExitOK || out != "fax_1\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	want := map[string]string{"to": "+4930123", "max_attempts": "5", "resolution": "superfine", "header": "ACME %n/%N",
		"retry_interval": "90s", "callback_url": "http://192.0.2.1/h", "client_ref": "inv-7", "priority": "9", "page_size": "letter",
		"ecm": "off", "t38": "on", "station_id": "ACME", "line_group": "trunk", "expire_at": "2030-01-02T03:04:05Z"}
	sendAt, err := time.Parse(time.RFC3339, f.fields["send_at"])
	if err != nil || sendAt.Before(before.Add(30*time.Minute-time.Second)) || sendAt.After(time.Now().Add(30*time.Minute)) {
		t.Errorf("send_at %q for +30m (err %v)", f.fields["send_at"], err)
	}
	delete(f.fields, "send_at")
	if fmt.Sprint(f.fields) != fmt.Sprint(want) {
		t.Errorf("fields\n got %v\nwant %v", f.fields, want)
	}
	if string(f.files["a.txt"]) != "first" || string(f.files["b.txt"]) != "second" || len(f.files) != 2 {
		t.Errorf("files %q", f.files)
	}
	// Nothing but to when no option is given.
	f2 := newFakeBox(t)
	if code, _, errs := run(t, f2, nil, "send", "-to", "99990001", a); code != ExitOK || len(f2.fields) != 1 {
		t.Fatalf("exit %d, fields %v, stderr %q", code, f2.fields, errs)
	}
}

// TestSendUsage: a bad command line is ExitUsage, an unreadable file
// ExitNoInput, no token ExitAuth, -h ExitOK with the token's sources; the
// box is not asked.
func TestSendUsage(t *testing.T) {
	f := newFakeBox(t)
	a := tempFile(t, "a.txt", "x")
	for _, c := range []struct {
		args []string
		env  map[string]string
		code int
		msg  string
	}{
		{[]string{"send", a}, nil, ExitUsage, "-to NUMBER is required"},
		{[]string{"send", "-to", "123"}, nil, ExitUsage, "at least one file"},
		{[]string{"send", "-to", "123", "-max-attempts", "many", a}, nil, ExitUsage, "-max-attempts"},
		{[]string{"send", "-to", "123", "-send-at", "tomorrow", a}, nil, ExitUsage, "RFC 3339"},
		{[]string{"send", "-to", "123", "-bogus", a}, nil, ExitUsage, "flag provided but not defined"},
		{[]string{"send", "-to", "123", filepath.Join(t.TempDir(), "missing.pdf")}, nil, ExitNoInput, "missing.pdf"},
		{[]string{"send", "-to", "123", t.TempDir()}, nil, ExitNoInput, "is a directory"},
		{[]string{"send", "-to", "123", a}, map[string]string{"FAXBOX_TOKEN": ""}, ExitAuth, "FAXBOX_TOKEN"},
		{[]string{"send", "-h"}, nil, ExitOK, "The API token: $FAXBOX_TOKEN"},
		{[]string{"list", "-active", "-done"}, nil, ExitUsage, "exclude each other"},
		{[]string{"list", "-status", "sent"}, nil, ExitUsage, "one of queued"},
		{[]string{"show"}, nil, ExitUsage, "name one fax job id"},
		{[]string{"cancel"}, nil, ExitUsage, "at least one"},
	} {
		code, _, errs := run(t, f, c.env, c.args...)
		if code != c.code || !strings.Contains(errs, c.msg) {
			t.Errorf("%v: exit %d (want %d), stderr %q (want %q)", c.args, code, c.code, errs, c.msg)
		}
	}
	if r := f.requested(""); len(r) != 0 {
		t.Errorf("the box was asked: %v", r)
	}
}

// TestConfigFile: the token and URL come from the config file when the
// environment has none; FAXBOX_TOKEN wins over the file; a broken file is
// ExitConfig.
func TestConfigFile(t *testing.T) {
	f := newFakeBox(t)
	f.jobs["fax_9"] = &job.Job{ID: "fax_9", To: "123", Status: job.Delivered}
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".config", "faxbox"), 0o700)
	cfg := filepath.Join(home, ".config", "faxbox", "cli.json")
	os.WriteFile(cfg, []byte(`{"url": "`+f.srv.URL+`", "token": "`+token+`"}`), 0o600)
	if code, out, errs := run(t, nil, map[string]string{"HOME": home, "FAXBOX_TOKEN": ""}, "show", "fax_9"); code != ExitOK || !strings.Contains(out, "delivered") {
		t.Fatalf("token from the config file: exit %d\n%s%s", code, out, errs)
	}
	code, _, errs := run(t, nil, map[string]string{"HOME": home, "FAXBOX_TOKEN": "wrong-token"}, "show", "fax_9")
	if code != ExitAuth || !strings.Contains(errs, "unauthorized") {
		t.Fatalf("FAXBOX_TOKEN over the file: exit %d, %q", code, errs)
	}
	bad := tempFile(t, "cli.json", `{"token": "x", "tokne": "y"}`)
	if code, _, errs := run(t, f, nil, "status", "-config", bad); code != ExitConfig || !strings.Contains(errs, "tokne") {
		t.Fatalf("bad config: exit %d, %q", code, errs)
	}
}

// TestAPIErrors: the API's error is printed with its code and field; the
// exit status tells a refusal from an unreachable box; a missing inbox is
// reported from the box's 404.
func TestAPIErrors(t *testing.T) {
	f := newFakeBox(t)
	a := tempFile(t, "a.txt", "x")
	f.answer["POST /v1/faxes"] = apiErr{400, "invalid_number", "to"}
	f.answer["POST /v1/faxes/fax_1/retry"] = apiErr{409, "already_delivered", "id"}
	f.answer["GET /v1/status"] = apiErr{500, "internal", ""}
	code, _, errs := run(t, f, nil, "send", "-to", "12", a)
	if code != ExitRefused || !strings.Contains(errs, "invalid_number: the invalid_number message (field to, HTTP 400)") {
		t.Errorf("refused: exit %d, %q", code, errs)
	}
	if code, _, errs = run(t, f, nil, "retry", "fax_1"); code != ExitRefused || !strings.Contains(errs, "already_delivered") {
		t.Errorf("retry: exit %d, %q", code, errs)
	}
	if code, _, errs = run(t, f, nil, "status"); code != ExitUnavailable || !strings.Contains(errs, "internal") {
		t.Errorf("500: exit %d, %q", code, errs)
	}
	if code, _, errs = run(t, f, nil, "inbox"); code != ExitUnavailable || !strings.Contains(errs, "GET /v1/inbox answered not_found: no such endpoint: GET /v1/inbox (HTTP 404)") {
		t.Errorf("inbox: exit %d, %q", code, errs)
	}
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	if code, _, errs = run(t, nil, map[string]string{"FAXBOX_URL": dead.URL}, "list"); code != ExitUnavailable || !strings.Contains(errs, "connection refused") {
		t.Errorf("unreachable: exit %d, %q", code, errs)
	}
	if code, _, errs = run(t, f, nil, "list", "-url", "ftp://box"); code != ExitUsage || !strings.Contains(errs, "not a box URL") {
		t.Errorf("bad -url: exit %d, %q", code, errs)
	}
}

// TestSendWait: send -wait follows the events to the end: progress with
// page n/m, and the exit status of the outcome.
func TestSendWait(t *testing.T) {
	a := tempFile(t, "a.txt", "x")
	now := time.Now()
	sending := job.Job{Status: job.Sending, Pages: 3, Attempts: []job.Attempt{{N: 1, Line: job.LineID{Group: "test", N: 1}}}}
	busy := job.NewError(failure.LineBusy, "busy signal (test line)")
	for _, c := range []struct {
		name   string
		end    job.Job
		code   int
		output []string
	}{
		{"delivered", job.Job{Status: job.Delivered, Pages: 3, PagesConfirmed: 3, Dials: 1}, ExitOK,
			[]string{"fax_1: queued", "sending page 1/3 to 99990001 on line test/1 (attempt 1 of 3)", "sending page 3/3", "fax_1: delivered: 3 pages to 99990001 after 1 call"}},
		{"failed", job.Job{Status: job.Failed, Pages: 3, Dials: 3, Error: busy}, ExitFailed,
			[]string{"sending page 3/3", "fax_1: failed after 3 calls: line.busy: " + busy.Message + " [busy signal (test line)]"}},
		{"cancelled", job.Job{Status: job.Cancelled, Pages: 3, PagesConfirmed: 1}, ExitCancelled,
			[]string{"fax_1: cancelled (1 page sent of 3)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeBox(t)
			f.events = []string{
				jobEvent(t, job.Job{Status: job.Converting}),
				jobEvent(t, job.Job{Status: job.Ready, Pages: 3}),
				lineEvent(t, dialler.LineState{Group: "other", Index: 1, State: dialler.LineSending, JobID: "fax_2", Page: 7, Pages: 9}),
				jobEvent(t, sending),
				lineEvent(t, dialler.LineState{Group: "test", Index: 1, State: dialler.LineSending, JobID: "fax_1", Page: 1, Pages: 3}),
				lineEvent(t, dialler.LineState{Group: "test", Index: 1, State: dialler.LineSending, JobID: "fax_1", Page: 3, Pages: 3}),
				jobEvent(t, job.Job{Status: job.RetryWait, Pages: 3, Dials: 1, NextAttemptAt: &now, Attempts: []job.Attempt{{Error: busy}}}),
				jobEvent(t, c.end),
			}
			code, out, errs := run(t, f, nil, "send", "-wait", "-to", "99990001", a)
			if code != c.code || out != "fax_1\n" {
				t.Fatalf("exit %d (want %d), stdout %q, stderr:\n%s", code, c.code, out, errs)
			}
			for _, w := range c.output {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errs)
				}
			}
			if strings.Contains(errs, "7/9") {
				t.Errorf("another job's page shown:\n%s", errs)
			}
			if !strings.Contains(errs, "attempt failed: line.busy") {
				t.Errorf("the retry wait is not explained:\n%s", errs)
			}
		})
	}
}

// TestSendWaitPolling: a box without the event stream is polled (the job and,
// in a call, the lines); -json prints the final job; -wait-timeout stops
// waiting with ExitTempFail.
func TestSendWaitPolling(t *testing.T) {
	defer func(d time.Duration) { pollInterval = d }(pollInterval)
	pollInterval = 20 * time.Millisecond
	a := tempFile(t, "a.txt", "x")
	f := newFakeBox(t)
	f.noEvents = true
	go func() {
		<-f.submit
		time.Sleep(100 * time.Millisecond)
		f.mu.Lock()
		f.jobs["fax_1"].Status, f.jobs["fax_1"].Pages = job.Sending, 3
		f.mu.Unlock()
		time.Sleep(100 * time.Millisecond)
		f.mu.Lock()
		f.jobs["fax_1"].Status, f.jobs["fax_1"].PagesConfirmed, f.jobs["fax_1"].Dials = job.Delivered, 3, 1
		f.mu.Unlock()
	}()
	code, out, errs := run(t, f, nil, "send", "-wait", "-json", "-to", "99990001", a)
	var j job.Job
	if code != ExitOK || json.Unmarshal([]byte(out), &j) != nil || j.Status != job.Delivered {
		t.Fatalf("exit %d, stdout %q, stderr:\n%s", code, out, errs)
	}
	if !strings.Contains(errs, "sending page 2/3 to 99990001 on line test/1") || !strings.Contains(errs, "polling") {
		t.Errorf("progress by polling:\n%s", errs)
	}
	if len(f.requested("GET /v1/lines")) == 0 {
		t.Error("the lines were not read")
	}

	f = newFakeBox(t)
	f.noEvents = true
	start := time.Now()
	code, _, errs = run(t, f, nil, "send", "-wait", "-wait-timeout", "300ms", "-to", "99990001", a)
	if code != ExitTempFail || !strings.Contains(errs, "no end after 300ms: stopped waiting; fax fax_1 goes on") || time.Since(start) > 5*time.Second {
		t.Fatalf("-wait-timeout: exit %d after %s, stderr:\n%s", code, time.Since(start), errs)
	}
}

// TestList: -active asks for each waiting status and merges them newest
// first; -done the ended ones; a table by default, JSON with -json.
func TestList(t *testing.T) {
	f := newFakeBox(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/faxes", func(w http.ResponseWriter, r *http.Request) {
		st := job.Status(r.URL.Query().Get("status"))
		items := []*job.Job{}
		switch st {
		case job.Queued:
			items = append(items, &job.Job{ID: "fax_3", To: "111", Status: st, MaxAttempts: 3})
		case job.RetryWait:
			items = append(items, &job.Job{ID: "fax_5", To: "222", Status: st, MaxAttempts: 3, Dials: 1, Error: nil})
		case job.Failed:
			items = append(items, &job.Job{ID: "fax_1", To: "333", Status: st, MaxAttempts: 3, Dials: 3, Error: job.NewError(failure.LineBusy, "")})
		}
		writeJSON(w, 200, map[string]any{"items": items})
	})
	f.handle(mux)
	code, out, errs := run(t, f, nil, "list", "-active", "-limit", "10")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.HasPrefix(lines[1], "fax_5") || !strings.HasPrefix(lines[2], "fax_3") {
		t.Errorf("table:\n%s", out)
	}
	if q := f.requested("GET /v1/faxes?"); len(q) != 6 || !strings.Contains(strings.Join(q, " "), "status=retry_wait") {
		t.Errorf("queries for -active: %v", q)
	}
	code, out, _ = run(t, f, nil, "list", "-done", "-json")
	var l listing
	if code != ExitOK || json.Unmarshal([]byte(out), &l) != nil || len(l.Items) != 1 || l.Items[0].ID != "fax_1" {
		t.Fatalf("-done -json: exit %d, %s", code, out)
	}
	if _, out, _ = run(t, f, nil, "list", "-done"); !strings.Contains(out, "line.busy") {
		t.Errorf("the failure is not in the table:\n%s", out)
	}
}

// TestShowStatusCancel: show writes the job and its attempts, status the
// lines, cancel tells a hangup under way from an ended job.
func TestShowStatusCancel(t *testing.T) {
	f := newFakeBox(t)
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	t1 := t0.Add(12 * time.Second)
	f.jobs["fax_7"] = &job.Job{ID: "fax_7", To: "99990002", Status: job.Failed, Pages: 2, MaxAttempts: 1, Dials: 1,
		Error: job.NewError(failure.LineBusy, "busy (test line)"),
		Files: []job.File{{Name: "a.pdf", Type: "pdf", Size: 1234}},
		Attempts: []job.Attempt{{N: 1, Line: job.LineID{Group: "test", N: 2}, StartedAt: t0, EndedAt: &t1, Result: job.AttemptFailed,
			FirstPage: 1, Transport: "test", Error: job.NewError(failure.LineBusy, "busy (test line)")}}}
	code, out, errs := run(t, f, nil, "show", "fax_7")
	for _, w := range []string{"status:", "failed", "line.busy", "a.pdf (pdf, 1234 bytes)", "test/2", "12.0"} {
		if !strings.Contains(out, w) {
			t.Errorf("show lacks %q:\n%s%s", w, out, errs)
		}
	}
	if code != ExitOK {
		t.Errorf("show: exit %d", code)
	}
	if code, _, errs := run(t, f, nil, "show", "fax_404"); code != ExitRefused || !strings.Contains(errs, "not_found") {
		t.Errorf("show missing: exit %d %q", code, errs)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"version": "1.2", "uptime": "5m0s", "queue": map[string]int{"active": 1, "in_call": 1},
			"lines":     []dialler.LineState{{Group: "test", Index: 1, State: dialler.LineSending, JobID: "fax_1", To: "99990001", Page: 2, Pages: 3, Healthy: true}},
			"extra":     map[string]any{"alarms": []string{"trunk unqualified"}, "trunk": "unreachable"},
			"jobs":      map[string]int{"stored": 4},
			"disk":      map[string]any{"free_bytes": 3 << 30, "db_bytes": 1 << 20},
			"test_line": map[string]any{"prefix": "9999000"}})
	})
	mux.HandleFunc("DELETE /v1/faxes/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "fax_busy" {
			writeJSON(w, 202, job.Job{ID: "fax_busy", Status: job.Sending})
			return
		}
		writeJSON(w, 200, job.Job{ID: r.PathValue("id"), Status: job.Cancelled})
	})
	f.handle(mux)
	code, out, errs = run(t, f, nil, "status")
	if code != ExitOK {
		t.Errorf("status: exit %d", code)
	}
	for _, w := range []string{"faxbox 1.2", "1 in a call", "trunk unqualified", "unreachable", "3.0 GB free", "test/1", "2/3"} {
		if !strings.Contains(out, w) {
			t.Errorf("status lacks %q:\n%s%s", w, out, errs)
		}
	}
	code, out, errs = run(t, f, nil, "cancel", "fax_q", "fax_busy")
	if code != ExitOK || !strings.Contains(out, "fax_q: cancelled") || !strings.Contains(out, "fax_busy: hanging up the call in progress") {
		t.Errorf("cancel: exit %d\n%s%s", code, out, errs)
	}
}

// TestInbox: the received faxes as the box describes them, in a table.
func TestInbox(t *testing.T) {
	f := newFakeBox(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/inbox", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("limit") != "5" {
			t.Errorf("query %q", r.URL.RawQuery)
		}
		writeJSON(w, 200, map[string]any{"items": []map[string]any{
			{"id": "rx_1", "received_at": "2026-12-01T10:00:00Z", "caller_id": "030123", "did": "500", "pages": 2, "status": "received"}},
			"next_cursor": "rx_1"})
	})
	f.handle(mux)
	code, out, errs := run(t, f, nil, "inbox", "-limit", "5")
	if code != ExitOK || !strings.Contains(out, "rx_1") || !strings.Contains(out, "030123") || !strings.Contains(out, "500") || !strings.Contains(errs, "-cursor rx_1") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
}
