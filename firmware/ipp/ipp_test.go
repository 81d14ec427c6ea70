package ipp_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/ipp"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/internal/testkit"
	"github.com/faxbox/faxbox/internal/testkit/testbox"
)

// client is a minimal IPP client for the tests.
type client struct {
	url        string // http://host:port/ipp/faxout
	user, pass string
	id         atomic.Uint32
}

func newClient(env *testbox.Env) *client {
	return &client{url: env.C.Base + ipp.Path}
}

func op(name string, tag goipp.Tag, v goipp.Value) goipp.Attribute {
	return goipp.MakeAttr(name, tag, v)
}

// do sends one request; it returns the HTTP status and the decoded answer
// (nil unless HTTP 200).
func (c *client) do(t *testing.T, code goipp.Op, ops, jobAttrs goipp.Attributes, doc []byte) (int, *goipp.Message) {
	t.Helper()
	m := goipp.NewRequest(goipp.DefaultVersion, code, c.id.Add(1))
	m.Operation = append(goipp.Attributes{
		op("attributes-charset", goipp.TagCharset, goipp.String("utf-8")),
		op("attributes-natural-language", goipp.TagLanguage, goipp.String("en")),
		op("printer-uri", goipp.TagURI, goipp.String(strings.Replace(c.url, "http:", "ipp:", 1))),
		op("requesting-user-name", goipp.TagName, goipp.String("tester")),
	}, ops...)
	m.Job = jobAttrs
	body, err := m.EncodeBytes()
	if err != nil {
		t.Fatal(err)
	}
	return c.post(t, append(body, doc...))
}

func (c *client) post(t *testing.T, body []byte) (int, *goipp.Message) {
	t.Helper()
	req, _ := http.NewRequest("POST", c.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/ipp")
	if c.pass != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/ipp" {
		t.Fatalf("Content-Type %q", ct)
	}
	var out goipp.Message
	if err := out.DecodeBytes(b); err != nil {
		t.Fatalf("undecodable response: %v", err)
	}
	return resp.StatusCode, &out
}

func tel(number string) goipp.Attributes {
	return goipp.Attributes{goipp.MakeAttr("destination-uris", goipp.TagBeginCollection,
		goipp.Collection{goipp.MakeAttr("destination-uri", goipp.TagURI, goipp.String("tel:"+number))})}
}

func status(m *goipp.Message) goipp.Status { return goipp.Status(m.Code) }

func attr(t *testing.T, attrs goipp.Attributes, name string) goipp.Values {
	t.Helper()
	for _, a := range attrs {
		if a.Name == name {
			return a.Values
		}
	}
	t.Fatalf("attribute %s missing in %v", name, attrs)
	return nil
}

func intAttr(t *testing.T, attrs goipp.Attributes, name string) int {
	t.Helper()
	return int(attr(t, attrs, name)[0].V.(goipp.Integer))
}

// waitState polls Get-Job-Attributes until job id reaches state.
func (c *client) waitState(t *testing.T, id, state int, d time.Duration) goipp.Attributes {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		_, m := c.do(t, goipp.OpGetJobAttributes, goipp.Attributes{op("job-id", goipp.TagInteger, goipp.Integer(id))}, nil, nil)
		if status(m) != goipp.StatusOk {
			t.Fatalf("Get-Job-Attributes %d: %v", id, status(m))
		}
		if got := intAttr(t, m.Job, "job-state"); got == state {
			return m.Job
		} else if time.Now().After(deadline) || (got >= 7 && got != state) {
			t.Fatalf("job %d: job-state %d, want %d: %v", id, got, state, m.Job)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPrinterAttributes(t *testing.T) {
	env := testbox.Start(t, nil)
	c := newClient(env)
	_, m := c.do(t, goipp.OpGetPrinterAttributes, nil, nil, nil)
	if status(m) != goipp.StatusOk {
		t.Fatalf("status %v", status(m))
	}
	for name, want := range map[string]string{
		"ipp-features-supported":            "faxout",
		"destination-uri-schemes-supported": "tel",
		"printer-uri-supported":             strings.Replace(c.url, "http:", "ipp:", 1),
		"printer-state":                     "3",
	} {
		if got := attr(t, m.Printer, name).String(); got != want {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
	}
	formats := attr(t, m.Printer, "document-format-supported").String()
	for _, f := range []string{ipp.FormatPDF, ipp.FormatPWG} {
		if !strings.Contains(formats, f) {
			t.Errorf("document-format-supported %s lacks %s", formats, f)
		}
	}
	ops := attr(t, m.Printer, "operations-supported")
	if len(ops) != 8 {
		t.Errorf("operations-supported: %v", ops)
	}
	_, m = c.do(t, goipp.OpGetPrinterAttributes, goipp.Attributes{goipp.MakeAttr("requested-attributes", goipp.TagKeyword, goipp.String("printer-state"))}, nil, nil)
	if len(m.Printer) != 1 || m.Printer[0].Name != "printer-state" {
		t.Errorf("requested-attributes printer-state gave %v", m.Printer)
	}
}

func TestPrintJobDelivered(t *testing.T) {
	env := testbox.Start(t, nil)
	c := newClient(env)
	pdf := testkit.PDF(t, 2)
	ops := goipp.Attributes{op("document-format", goipp.TagMimeType, goipp.String(ipp.FormatPDF)), op("job-name", goipp.TagName, goipp.String("invoice"))}
	_, m := c.do(t, goipp.OpValidateJob, ops, tel("99990001"), nil)
	if status(m) != goipp.StatusOk {
		t.Fatalf("Validate-Job: %v %v", status(m), m.Operation)
	}
	if n := len(env.Jobs(t, job.KindFax)); n != 0 {
		t.Fatalf("Validate-Job made %d jobs", n)
	}
	_, m = c.do(t, goipp.OpPrintJob, ops, tel("9999-0001"), pdf)
	if status(m) != goipp.StatusOk {
		t.Fatalf("Print-Job: %v %v", status(m), m.Operation)
	}
	id := intAttr(t, m.Job, "job-id")
	done := c.waitState(t, id, 9, 30*time.Second)
	if got := intAttr(t, done, "job-impressions-completed"); got != 2 {
		t.Errorf("job-impressions-completed %d, want 2", got)
	}
	if got := attr(t, done, "job-name").String(); got != "invoice" {
		t.Errorf("job-name %q", got)
	}
	jobs := env.Jobs(t, job.KindFax)
	if len(jobs) != 1 || jobs[0].ClientRef != fmt.Sprintf("ipp-%d", id) || jobs[0].To != "99990001" || jobs[0].Status != job.Delivered {
		t.Fatalf("faxbox jobs: %+v", jobs)
	}
	// Get-Jobs lists it among the completed jobs, not the others.
	_, m = c.do(t, goipp.OpGetJobs, goipp.Attributes{op("which-jobs", goipp.TagKeyword, goipp.String("completed"))}, nil, nil)
	if len(m.Groups) < 2 || intAttr(t, m.Groups[1].Attrs, "job-id") != id {
		t.Fatalf("Get-Jobs completed: %v", m.Groups)
	}
	_, m = c.do(t, goipp.OpGetJobs, nil, nil, nil)
	if len(m.Groups) != 1 {
		t.Fatalf("Get-Jobs not-completed lists %v", m.Groups)
	}
}

func TestCreateJobSendDocuments(t *testing.T) {
	env := testbox.Start(t, nil)
	c := newClient(env)
	dests := tel("99990001")
	dests[0].Values.Add(goipp.TagBeginCollection, goipp.Collection{goipp.MakeAttr("destination-uri", goipp.TagURI, goipp.String("mailto:a@example.com"))})
	_, m := c.do(t, goipp.OpCreateJob, nil, dests, nil)
	if status(m) != goipp.StatusOkIgnoredOrSubstituted || len(m.Unsupported) != 1 {
		t.Fatalf("Create-Job: %v, unsupported %v", status(m), m.Unsupported)
	}
	id := intAttr(t, m.Job, "job-id")
	if got := intAttr(t, m.Job, "job-state"); got != 4 {
		t.Fatalf("job-state %d after Create-Job", got)
	}
	send := func(last bool, doc []byte) *goipp.Message {
		_, m := c.do(t, goipp.OpSendDocument, goipp.Attributes{op("job-id", goipp.TagInteger, goipp.Integer(id)),
			op("last-document", goipp.TagBoolean, goipp.Boolean(last))}, nil, doc)
		return m
	}
	if m := send(false, testkit.PDF(t, 1)); status(m) != goipp.StatusOk {
		t.Fatalf("Send-Document 1: %v %v", status(m), m.Operation)
	}
	if m := send(true, testkit.PDF(t, 2)); status(m) != goipp.StatusOk {
		t.Fatalf("Send-Document 2: %v %v", status(m), m.Operation)
	}
	done := c.waitState(t, id, 9, 30*time.Second)
	if got := intAttr(t, done, "job-impressions-completed"); got != 3 {
		t.Errorf("pages %d, want 3", got)
	}
	if m := send(true, testkit.PDF(t, 1)); status(m) != goipp.StatusErrorNotPossible {
		t.Errorf("Send-Document after the last: %v", status(m))
	}
	if m := func() *goipp.Message {
		_, m := c.do(t, goipp.OpCancelJob, goipp.Attributes{op("job-id", goipp.TagInteger, goipp.Integer(id))}, nil, nil)
		return m
	}(); status(m) != goipp.StatusErrorNotPossible {
		t.Errorf("Cancel-Job of a delivered job: %v", status(m))
	}
}

func TestCancelJobs(t *testing.T) {
	env := testbox.Start(t, func(c *config.Config) { c.TestLine.PageTime = job.Duration(2 * time.Second) })
	c := newClient(env)
	cancel := func(id int) goipp.Status {
		_, m := c.do(t, goipp.OpCancelJob, goipp.Attributes{op("job-uri", goipp.TagURI, goipp.String(fmt.Sprintf("ipp://x%s/%d", ipp.Path, id)))}, nil, nil)
		return status(m)
	}
	// A created job waiting for its document.
	_, m := c.do(t, goipp.OpCreateJob, nil, tel("99990001"), nil)
	held := intAttr(t, m.Job, "job-id")
	if st := cancel(held); st != goipp.StatusOk {
		t.Fatalf("Cancel-Job (held): %v", st)
	}
	c.waitState(t, held, 7, time.Second)
	// A fax being sent (slow pages).
	_, m = c.do(t, goipp.OpPrintJob, nil, tel("99990001"), testkit.PDF(t, 3))
	sending := intAttr(t, m.Job, "job-id")
	c.waitState(t, sending, 5, 30*time.Second)
	if st := cancel(sending); st != goipp.StatusOk {
		t.Fatalf("Cancel-Job (sending): %v", st)
	}
	c.waitState(t, sending, 7, 30*time.Second)
	if st := cancel(999); st != goipp.StatusErrorNotFound {
		t.Errorf("Cancel-Job of no job: %v", st)
	}
}

func TestRefusals(t *testing.T) {
	env := testbox.Start(t, func(c *config.Config) { c.IPP.AllowIPs = nil })
	c := newClient(env)
	if code, _ := c.do(t, goipp.OpGetPrinterAttributes, nil, nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("no credentials from an address not allowed: HTTP %d", code)
	}
	c.user, c.pass = "anyone", "wrong-token"
	if code, _ := c.do(t, goipp.OpGetPrinterAttributes, nil, nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("a wrong token: HTTP %d", code)
	}
	c.pass = testbox.Token
	pdf := testkit.PDF(t, 1)
	for _, tc := range []struct {
		name string
		ops  goipp.Attributes
		dest goipp.Attributes
		doc  []byte
		want goipp.Status
	}{
		{"no destination", nil, nil, pdf, goipp.StatusErrorBadRequest},
		{"short number", nil, tel("12"), pdf, goipp.StatusErrorAttributesOrValues},
		{"letters", nil, tel("0800FAXBOX"), pdf, goipp.StatusErrorAttributesOrValues},
		{"no line for it", nil, tel("0301234567"), pdf, goipp.StatusErrorAttributesOrValues},
		{"format", goipp.Attributes{op("document-format", goipp.TagMimeType, goipp.String("application/postscript"))}, tel("99990001"), pdf, goipp.StatusErrorDocumentFormatNotSupported},
		{"compression", goipp.Attributes{op("compression", goipp.TagKeyword, goipp.String("gzip"))}, tel("99990001"), pdf, goipp.StatusErrorCompressionNotSupported},
		{"not a document", nil, tel("99990001"), []byte("hello, this is text"), goipp.StatusErrorDocumentFormatNotSupported},
		{"declared PDF, is PNG", goipp.Attributes{op("document-format", goipp.TagMimeType, goipp.String(ipp.FormatPDF))}, tel("99990001"), []byte("\x89PNG\r\n\x1a\nrest"), goipp.StatusErrorDocumentFormatError},
		{"truncated PDF", nil, tel("99990001"), pdf[:len(pdf)/2], goipp.StatusErrorDocumentFormatError},
		{"empty", nil, tel("99990001"), nil, goipp.StatusErrorBadRequest},
	} {
		_, m := c.do(t, goipp.OpPrintJob, tc.ops, tc.dest, tc.doc)
		if status(m) != tc.want {
			t.Errorf("%s: %v, want %v (%v)", tc.name, status(m), tc.want, m.Operation)
		}
	}
	if n := len(env.Jobs(t, job.KindFax)); n != 0 {
		t.Errorf("refused requests made %d jobs", n)
	}
	_, m := c.do(t, goipp.OpPrintJob, nil, tel("99990001"), pdf)
	if status(m) != goipp.StatusOk {
		t.Fatalf("with the token: %v %v", status(m), m.Operation)
	}
}

// TestMalformed sends broken requests to the real box: each gets an IPP
// error status (with its request-id when it has one), never a dead server.
func TestMalformed(t *testing.T) {
	env := testbox.Start(t, nil)
	c := newClient(env)
	good, _ := goipp.NewRequest(goipp.DefaultVersion, goipp.OpGetPrinterAttributes, 77).EncodeBytes()
	header := func(id uint32, target bool) []byte {
		m := goipp.NewRequest(goipp.DefaultVersion, goipp.OpGetPrinterAttributes, id)
		m.Operation = goipp.Attributes{op("attributes-charset", goipp.TagCharset, goipp.String("utf-8")),
			op("attributes-natural-language", goipp.TagLanguage, goipp.String("en"))}
		if target {
			m.Operation.Add(op("printer-uri", goipp.TagURI, goipp.String("ipp://x/ipp/faxout")))
		}
		b, _ := m.EncodeBytes()
		return b
	}
	for name, body := range map[string][]byte{
		"empty":        {},
		"header only":  good[:8],
		"truncated":    {2, 0, 0, 11, 0, 0, 0, 77, 1, 0x47, 0, 18, 'a'},
		"garbage":      bytes.Repeat([]byte{0xff}, 300),
		"huge attrs":   append(append([]byte{2, 0, 0, 11, 0, 0, 0, 77, 1}, bytes.Repeat([]byte{0x44, 0, 1, 'k', 0xff, 0xff}, 2)...), make([]byte, 200000)...),
		"no charset":   good,
		"request-id 0": header(0, true),
		"no target":    header(78, false),
		"bad version":  append([]byte{9, 9}, good[2:]...),
		"bad op":       append(append([]byte{}, good[:2]...), append([]byte{0x40, 0x01}, good[4:]...)...),
	} {
		code, m := c.post(t, body)
		if code != http.StatusOK || m == nil {
			t.Errorf("%s: HTTP %d", name, code)
			continue
		}
		if status(m) < 0x0400 {
			t.Errorf("%s: status %v", name, status(m))
		}
		if len(body) >= 8 {
			want := uint32(body[4])<<24 | uint32(body[5])<<16 | uint32(body[6])<<8 | uint32(body[7])
			if m.RequestID != want {
				t.Errorf("%s: request-id %d, want %d", name, m.RequestID, want)
			}
		}
	}
	if _, m := c.do(t, goipp.OpGetPrinterAttributes, nil, nil, nil); status(m) != goipp.StatusOk {
		t.Fatalf("the service after malformed requests: %v", status(m))
	}
}

// TestPWGRasterFromGhostscript prints PWG raster made by ghostscript's
// pwgraster device: the box converts it and sends every page.
func TestPWGRasterFromGhostscript(t *testing.T) {
	env := testbox.Start(t, nil)
	c := newClient(env)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.pdf"), filepath.Join(dir, "out.pwg")
	os.WriteFile(in, testkit.PDF(t, 2), 0o600)
	if b, err := exec.Command("gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pwgraster", "-r200", "-o", out, in).CombinedOutput(); err != nil {
		t.Fatalf("gs: %v\n%s", err, b)
	}
	raster, _ := os.ReadFile(out)
	ops := goipp.Attributes{op("document-format", goipp.TagMimeType, goipp.String(ipp.FormatPWG))}
	_, m := c.do(t, goipp.OpPrintJob, ops, tel("99990001"), raster)
	if status(m) != goipp.StatusOk {
		t.Fatalf("Print-Job (PWG): %v %v", status(m), m.Operation)
	}
	done := c.waitState(t, intAttr(t, m.Job, "job-id"), 9, 30*time.Second)
	if got := intAttr(t, done, "job-impressions-completed"); got != 2 {
		t.Errorf("pages %d, want 2", got)
	}
}

// TestExtraListener serves the printer on ipp.listen too (the IPP port on
// a box), and nothing else there.
func TestExtraListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	e := testbox.Start(t, func(c *config.Config) { c.IPP.Listen = addr })
	// The API answers once Serve runs, which opens ipp.listen first.
	e.C.Do(t, "GET", "/healthz", nil, "", nil)
	c := &client{url: "http://" + addr + ipp.Path}
	_, m := c.do(t, goipp.OpGetPrinterAttributes, nil, nil, nil)
	if status(m) != goipp.StatusOk || attr(t, m.Printer, "printer-uri-supported").String() != "ipp://"+addr+ipp.Path {
		t.Fatalf("on ipp.listen: %v %v", status(m), m.Printer)
	}
	resp, err := http.Get("http://" + addr + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/v1/status on ipp.listen: HTTP %d", resp.StatusCode)
	}
}
