// Package ipp is faxbox's print-to-fax service: an IPP FaxOut printer (PWG
// 5100.15) at /ipp/faxout, so CUPS queues and print dialogs can fax.
//
// Contracts:
//   - Operations: Get-Printer-Attributes, Validate-Job, Print-Job, Create-Job
//   - Send-Document, Get-Jobs, Get-Job-Attributes and Cancel-Job. Others
//     answer server-error-operation-not-supported.
//   - A job names its number in destination-uris (one tel: URI; destinations
//     of other schemes are ignored and listed as unsupported). Its documents
//     (PDF, PWG raster, JPEG, PNG) become one faxbox fax job through the
//     API's own submission handler (POST /v1/faxes), so numbers, destination
//     rules, document checks, limits and storage are those of the API.
//   - IPP job-ids map to faxbox jobs by client_ref "ipp-<job-id>"; job-ids
//     survive restarts (their counter is kept in the store).
//   - Clients on ipp.allow_ips need no credentials; others send HTTP Basic
//     with an API token as the password, or get 401.
//   - A request's attributes are read up to maxAttrBytes; a malformed or
//     oversized request gets an IPP error status, never a crash.
package ipp

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/rules"
	"github.com/faxbox/faxbox/firmware/store"
)

// Path is where the FaxOut printer is served; job URIs are Path/<job-id>.
const Path = "/ipp/faxout"

// maxAttrBytes bounds the attribute part of a request (the document data
// that follows is bounded by limits.max_upload_bytes).
const maxAttrBytes = 64 << 10

// Jobs is what the service needs of the box's engine.
type Jobs interface {
	// Get returns a job as it stands.
	Get(id string) (*job.Job, error)
	// Cancel cancels a job (hangs up a call in progress).
	Cancel(id string) (*job.Job, error)
	// Rejected reports whether the destination rules refuse number.
	Rejected(number string) (reason string, rejected bool)
	// Route names the line group that would dial to (error: none can).
	Route(to, group string) (string, error)
}

// Options wires the service into the box.
type Options struct {
	Cfg config.Config
	// Submit is POST /v1/faxes's handler without its token check.
	Submit http.Handler
	Jobs   Jobs
	Store  *store.DB
	// SpoolDir holds documents until their job is submitted; New empties
	// it.
	SpoolDir string
	Log      *slog.Logger
	Now      func() time.Time
	// Started is when the box came up (printer-up-time counts from it).
	Started time.Time
}

// Service is the FaxOut printer. It is an http.Handler for POST Path and
// POST Path/<job-id>.
type Service struct {
	o     Options
	log   *slog.Logger
	allow rules.Nets
	spool string
	// spooling admits limits.max_concurrent_uploads documents into the
	// spool at once.
	spooling chan struct{}

	mu      sync.Mutex
	pending map[JobID]*pendingJob // created, not yet submitted (or ended so)
	names   map[JobID]jobMeta     // job-name and user of jobs submitted since start
	ids     idAlloc
}

// New builds the service; it clears the spool of documents a previous run
// left behind.
func New(o Options) (*Service, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Started.IsZero() {
		o.Started = o.Now()
	}
	s := &Service{o: o, log: o.Log, pending: map[JobID]*pendingJob{}, names: map[JobID]jobMeta{}}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "ipp")
	s.allow, _ = rules.ParseNets(o.Cfg.IPP.AllowIPs) // validated with the config
	s.spool = o.SpoolDir
	if s.spool == "" {
		return nil, errors.New("ipp: no spool directory")
	}
	if err := os.RemoveAll(s.spool); err != nil {
		return nil, fmt.Errorf("ipp: clear spool %s: %w", s.spool, err)
	}
	if err := os.MkdirAll(s.spool, 0o750); err != nil {
		return nil, fmt.Errorf("ipp: spool %s: %w", s.spool, err)
	}
	s.ids.store = o.Store
	s.spooling = make(chan struct{}, max(o.Cfg.Limits.MaxConcurrentUploads, 1))
	return s, nil
}

// request is one decoded IPP request and what came with it.
type request struct {
	msg  *goipp.Message
	op   goipp.Op
	body io.Reader // the document data after the attributes
	http *http.Request
	ctx  context.Context
}

// response is an operation's answer.
type response struct {
	status      goipp.Status
	message     string
	op          goipp.Attributes // beyond charset and language
	printer     goipp.Attributes
	jobs        []goipp.Attributes
	unsupported goipp.Attributes
}

func fail(status goipp.Status, format string, args ...any) *response {
	return &response{status: status, message: fmt.Sprintf(format, args...)}
}

// ServeHTTP answers one IPP request.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "IPP requests are POSTed", http.StatusMethodNotAllowed)
		return
	}
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="faxbox"`)
		http.Error(w, "an API token is needed (HTTP Basic password)", http.StatusUnauthorized)
		return
	}
	head := &headBuf{}
	lr := &io.LimitedReader{R: io.TeeReader(r.Body, head), N: maxAttrBytes}
	msg := &goipp.Message{}
	var resp *response
	if err := msg.Decode(lr); err != nil {
		msg.Version, msg.RequestID = head.header()
		resp = fail(goipp.StatusErrorBadRequest, "malformed IPP request: %v", err)
		if lr.N <= 0 {
			resp = fail(goipp.StatusErrorRequestValue, "the request's attributes exceed %d bytes", maxAttrBytes)
		}
	} else {
		resp = s.dispatch(&request{msg: msg, op: goipp.Op(msg.Code), body: r.Body, http: r, ctx: r.Context()})
	}
	s.write(w, msg, resp)
}

// headBuf keeps a request's first 8 bytes (version and request-id), so even
// an undecodable request is answered with its own request-id.
type headBuf struct{ b []byte }

func (h *headBuf) Write(p []byte) (int, error) {
	if n := 8 - len(h.b); n > 0 {
		h.b = append(h.b, p[:min(n, len(p))]...)
	}
	return len(p), nil
}

func (h *headBuf) header() (goipp.Version, uint32) {
	if len(h.b) < 8 {
		return goipp.DefaultVersion, 0
	}
	v := goipp.Version(uint16(h.b[0])<<8 | uint16(h.b[1]))
	return v, uint32(h.b[4])<<24 | uint32(h.b[5])<<16 | uint32(h.b[6])<<8 | uint32(h.b[7])
}

// write encodes resp as the answer to msg.
func (s *Service) write(w http.ResponseWriter, msg *goipp.Message, resp *response) {
	v := msg.Version
	if v>>8 < 1 || v>>8 > 2 {
		v = goipp.DefaultVersion
	}
	out := goipp.NewResponse(v, resp.status, msg.RequestID)
	out.Operation.Add(goipp.MakeAttr("attributes-charset", goipp.TagCharset, goipp.String("utf-8")))
	out.Operation.Add(goipp.MakeAttr("attributes-natural-language", goipp.TagLanguage, goipp.String("en")))
	if resp.message != "" {
		out.Operation.Add(goipp.MakeAttr("status-message", goipp.TagText, goipp.String(truncate(resp.message, 255))))
	}
	out.Operation = append(out.Operation, resp.op...)
	groups := goipp.Groups{{Tag: goipp.TagOperationGroup, Attrs: out.Operation}}
	if len(resp.unsupported) > 0 {
		groups = append(groups, goipp.Group{Tag: goipp.TagUnsupportedGroup, Attrs: resp.unsupported})
	}
	if len(resp.printer) > 0 {
		groups = append(groups, goipp.Group{Tag: goipp.TagPrinterGroup, Attrs: resp.printer})
	}
	for _, j := range resp.jobs {
		groups = append(groups, goipp.Group{Tag: goipp.TagJobGroup, Attrs: j})
	}
	out.Groups = groups
	var buf bytes.Buffer
	if err := out.Encode(&buf); err != nil {
		s.log.Error("ipp: encode response", "err", err)
		http.Error(w, "could not encode the IPP response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/ipp")
	w.Write(buf.Bytes())
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// authorized admits clients on ipp.allow_ips and HTTP Basic with an API
// token as the password (any user name).
func (s *Service) authorized(r *http.Request) bool {
	if s.allow.ContainsAddr(r.RemoteAddr) {
		return true
	}
	_, pass, ok := r.BasicAuth()
	if !ok || pass == "" {
		return false
	}
	good := 0
	for _, t := range s.o.Cfg.Tokens {
		good |= subtle.ConstantTimeCompare([]byte(pass), []byte(t))
	}
	return good == 1
}

// dispatch checks what every request needs and runs its operation.
func (s *Service) dispatch(rq *request) *response {
	if major := rq.msg.Version >> 8; major < 1 || major > 2 {
		return fail(goipp.StatusErrorVersionNotSupported, "IPP/%d.%d is not supported (1.1, 2.0)", major, rq.msg.Version&0xff)
	}
	if rq.msg.RequestID == 0 {
		return fail(goipp.StatusErrorBadRequest, "request-id 0 is not allowed")
	}
	if e := checkOperationGroup(rq.msg); e != nil {
		return e
	}
	switch rq.op {
	case goipp.OpGetPrinterAttributes:
		return s.getPrinterAttributes(rq)
	case goipp.OpValidateJob:
		_, e := s.jobRequest(rq)
		if e != nil {
			return e
		}
		return &response{status: goipp.StatusOk}
	case goipp.OpPrintJob:
		return s.printJob(rq)
	case goipp.OpCreateJob:
		return s.createJob(rq)
	case goipp.OpSendDocument:
		return s.sendDocument(rq)
	case goipp.OpGetJobs:
		return s.getJobs(rq)
	case goipp.OpGetJobAttributes:
		return s.getJobAttributes(rq)
	case goipp.OpCancelJob:
		return s.cancelJob(rq)
	}
	return fail(goipp.StatusErrorOperationNotSupported, "operation %s is not supported", rq.op)
}

// checkOperationGroup checks the attributes every request starts with:
// attributes-charset, then attributes-natural-language (RFC 8011 4.1.4),
// and its target, printer-uri or job-uri.
func checkOperationGroup(m *goipp.Message) *response {
	ops := m.Operation
	if len(ops) < 2 || ops[0].Name != "attributes-charset" || ops[1].Name != "attributes-natural-language" {
		return fail(goipp.StatusErrorBadRequest, "the operation attributes must start with attributes-charset and attributes-natural-language")
	}
	_, printer := find(ops, "printer-uri")
	_, job := find(ops, "job-uri")
	if !printer && !job {
		return fail(goipp.StatusErrorBadRequest, "the request names no target (printer-uri or job-uri)")
	}
	cs := firstString(ops, "attributes-charset")
	if cs != "utf-8" && cs != "us-ascii" {
		return &response{status: goipp.StatusErrorCharset, message: "charset " + cs + " is not supported",
			unsupported: goipp.Attributes{ops[0]}}
	}
	return nil
}

// errNoAttr is returned by the attribute readers for a missing attribute.
var errNoAttr = errors.New("ipp: attribute missing")

// find returns the attribute name of attrs.
func find(attrs goipp.Attributes, name string) (goipp.Attribute, bool) {
	for _, a := range attrs {
		if a.Name == name {
			return a, true
		}
	}
	return goipp.Attribute{}, false
}

// firstString returns the first value of attribute name as text ("" when
// absent or not textual).
func firstString(attrs goipp.Attributes, name string) string {
	a, ok := find(attrs, name)
	if !ok || len(a.Values) == 0 {
		return ""
	}
	switch v := a.Values[0].V.(type) {
	case goipp.String:
		return string(v)
	case goipp.TextWithLang:
		return v.Text
	}
	return ""
}

// firstInt returns the first value of integer/enum attribute name.
func firstInt(attrs goipp.Attributes, name string) (int, error) {
	a, ok := find(attrs, name)
	if !ok || len(a.Values) == 0 {
		return 0, errNoAttr
	}
	v, ok := a.Values[0].V.(goipp.Integer)
	if !ok {
		return 0, fmt.Errorf("ipp: %s is not an integer", name)
	}
	return int(v), nil
}

// firstBool returns the first value of boolean attribute name (def when
// absent).
func firstBool(attrs goipp.Attributes, name string, def bool) (bool, error) {
	a, ok := find(attrs, name)
	if !ok || len(a.Values) == 0 {
		return def, nil
	}
	v, ok := a.Values[0].V.(goipp.Boolean)
	if !ok {
		return def, fmt.Errorf("ipp: %s is not a boolean", name)
	}
	return bool(v), nil
}
