package ipp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/rules"
)

// jobSpec is a job creation request as read from its attributes.
type jobSpec struct {
	to     string
	fields map[string]string // further POST /v1/faxes fields
	name   string
	user   string
	// unsupported lists what was ignored (destinations of other schemes).
	unsupported goipp.Attributes
}

// ok is the status a job creation answers when it succeeds.
func (sp *jobSpec) ok() goipp.Status {
	if len(sp.unsupported) > 0 {
		return goipp.StatusOkIgnoredOrSubstituted
	}
	return goipp.StatusOk
}

// jobRequest reads and checks a Validate-Job, Print-Job or Create-Job
// request: its destination (one tel: URI, checked with the box's number and
// destination rules), its document format and its job template attributes.
func (s *Service) jobRequest(rq *request) (*jobSpec, *response) {
	ops, jobAttrs := rq.msg.Operation, rq.msg.Job
	sp := &jobSpec{fields: map[string]string{}, name: firstString(ops, "job-name"), user: firstString(ops, "requesting-user-name")}
	if rq.op != goipp.OpCreateJob {
		if e := checkFormat(ops); e != nil {
			return nil, e
		}
	}
	if e := s.destination(jobAttrs, sp); e != nil {
		return nil, e
	}
	if e := s.templateFields(jobAttrs, sp); e != nil {
		return nil, e
	}
	return sp, nil
}

// checkFormat refuses a document-format or compression the printer does not
// take.
func checkFormat(ops goipp.Attributes) *response {
	if c := firstString(ops, "compression"); c != "" && c != "none" {
		a, _ := find(ops, "compression")
		return &response{status: goipp.StatusErrorCompressionNotSupported, message: "compression " + c + " is not supported",
			unsupported: goipp.Attributes{a}}
	}
	f := firstString(ops, "document-format")
	if f == "" {
		return nil
	}
	for _, ok := range formats {
		if f == ok {
			return nil
		}
	}
	a, _ := find(ops, "document-format")
	return &response{status: goipp.StatusErrorDocumentFormatNotSupported,
		message: "document-format " + f + " is not supported (" + strings.Join(formats, ", ") + ")", unsupported: goipp.Attributes{a}}
}

// destination reads destination-uris into sp.to: exactly one tel: URI;
// destinations of other schemes are ignored (listed as unsupported).
func (s *Service) destination(jobAttrs goipp.Attributes, sp *jobSpec) *response {
	a, ok := find(jobAttrs, "destination-uris")
	if !ok {
		return fail(goipp.StatusErrorBadRequest, "destination-uris with a tel: URI (the fax number) is required; with CUPS: lp -o phone=NUMBER")
	}
	var tels []string
	ignored := goipp.Attribute{Name: "destination-uris"}
	for _, v := range a.Values {
		col, isCol := v.V.(goipp.Collection)
		if !isCol {
			return &response{status: goipp.StatusErrorBadRequest, message: "destination-uris must be collections", unsupported: goipp.Attributes{a}}
		}
		u := firstString(goipp.Attributes(col), "destination-uri")
		if !strings.HasPrefix(strings.ToLower(u), "tel:") {
			ignored.Values.Add(goipp.TagBeginCollection, col)
			continue
		}
		n, err := telNumber(u, firstString(goipp.Attributes(col), "pre-dial-string"))
		if err != nil {
			return &response{status: goipp.StatusErrorAttributesOrValues, message: err.Error(), unsupported: goipp.Attributes{a}}
		}
		tels = append(tels, n)
	}
	if len(ignored.Values) > 0 {
		sp.unsupported = append(sp.unsupported, ignored)
	}
	switch {
	case len(tels) == 0:
		return &response{status: goipp.StatusErrorAttributesOrValues, message: "destination-uris names no tel: URI", unsupported: goipp.Attributes{a}}
	case len(tels) > 1:
		return &response{status: goipp.StatusErrorAttributesOrValues, message: "one tel: destination per job (multiple-destination-uris-supported is false)", unsupported: goipp.Attributes{a}}
	}
	sp.to = tels[0]
	return s.checkNumber(sp.to, a)
}

// checkNumber applies the box's number syntax, destination rules and
// routing to a number, as the API does when the job is submitted.
func (s *Service) checkNumber(to string, a goipp.Attribute) *response {
	bad := func(msg string) *response {
		return &response{status: goipp.StatusErrorAttributesOrValues, message: msg, unsupported: goipp.Attributes{a}}
	}
	if rules.Number(to) != nil {
		return bad("the fax number must be 3 to 20 digits, optionally with a leading +")
	}
	if reason, no := s.o.Jobs.Rejected(to); no {
		return bad("the box's destination rules refuse this number: " + reason)
	}
	if _, err := s.o.Jobs.Route(to, ""); err != nil {
		return bad("no line can dial this number: " + err.Error())
	}
	return nil
}

// telNumber reads a tel: URI (RFC 3966) as the digits faxbox dials: visual
// separators (- . ( ) and spaces) are dropped, parameters after ; ignored,
// a leading + kept; pre (pre-dial-string, digits) goes first.
func telNumber(u, pre string) (string, error) {
	v, err := url.PathUnescape(u[len("tel:"):])
	if err != nil {
		return "", fmt.Errorf("destination-uri %q: %w", u, err)
	}
	v, _, _ = strings.Cut(v, ";")
	var b strings.Builder
	for i, r := range v {
		switch {
		case r >= '0' && r <= '9', r == '+' && i == 0:
			b.WriteRune(r)
		case strings.ContainsRune("-.() ", r):
		default:
			return "", fmt.Errorf("destination-uri %q: only digits, a leading + and visual separators can be dialled", u)
		}
	}
	for _, r := range pre {
		if r < '0' || r > '9' {
			return "", fmt.Errorf("pre-dial-string %q: digits only", pre)
		}
	}
	return pre + b.String(), nil
}

// templateFields maps the job template attributes faxbox knows to the API's
// fields: media (page_size), print-quality (resolution), number-of-retries
// (max_attempts) and retry-interval. Others are ignored.
func (s *Service) templateFields(jobAttrs goipp.Attributes, sp *jobSpec) *response {
	bad := func(name string) *response {
		a, _ := find(jobAttrs, name)
		return &response{status: goipp.StatusErrorAttributesOrValues, message: name + ": value not supported", unsupported: goipp.Attributes{a}}
	}
	if m := firstString(jobAttrs, "media"); m != "" {
		found := false
		for _, ms := range mediaSizes {
			if ms.pwg == m {
				sp.fields["page_size"], found = ms.api, true
			}
		}
		if !found {
			return bad("media")
		}
	}
	if q, err := firstInt(jobAttrs, "print-quality"); err == nil {
		if qualities[q] == "" {
			return bad("print-quality")
		}
		sp.fields["resolution"] = qualities[q]
	}
	if n, err := firstInt(jobAttrs, "number-of-retries"); err == nil {
		if n < 0 || n >= s.o.Cfg.Limits.MaxAttempts {
			return bad("number-of-retries")
		}
		sp.fields["max_attempts"] = strconv.Itoa(n + 1)
	}
	if n, err := firstInt(jobAttrs, "retry-interval"); err == nil {
		if n < 1 || n > 86400 {
			return bad("retry-interval")
		}
		sp.fields["retry_interval"] = strconv.Itoa(n)
	}
	return nil
}

// spooled is one document waiting in the spool.
type spooled struct {
	path, ctype, ext string
}

// spoolDoc reads the request's document data into the spool, typed by its
// content; PWG raster is turned into a PDF. It reports no document (nil)
// for an empty body.
func (s *Service) spoolDoc(rq *request, id JobID, idx int) (*spooled, *response) {
	if e := checkFormat(rq.msg.Operation); e != nil {
		return nil, e
	}
	select {
	case s.spooling <- struct{}{}:
		defer func() { <-s.spooling }()
	case <-time.After(spoolWait):
		return nil, fail(goipp.StatusErrorBusy, "the box is reading %d other documents; try again in a few seconds", cap(s.spooling))
	case <-rq.ctx.Done():
		return nil, fail(goipp.StatusErrorBusy, "the request ended while waiting")
	}
	declared := firstString(rq.msg.Operation, "document-format")
	limit := s.o.Cfg.Limits.MaxUploadBytes
	raw := filepath.Join(s.spool, fmt.Sprintf("%d-%02d.raw", id, idx))
	f, err := os.OpenFile(raw, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, s.internal("spool a document", err)
	}
	n, err := io.Copy(f, io.LimitReader(rq.body, limit+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		os.Remove(raw)
		return nil, fail(goipp.StatusErrorBadRequest, "the document could not be read: %v", err)
	case n > limit:
		os.Remove(raw)
		return nil, fail(goipp.StatusErrorRequestEntity, "the document exceeds %d bytes", limit)
	case n == 0:
		os.Remove(raw)
		return nil, nil
	}
	return s.typeDoc(raw, declared, id, idx)
}

// typeDoc types a spooled document by its first bytes and checks it
// against the declared format.
func (s *Service) typeDoc(raw, declared string, id JobID, idx int) (*spooled, *response) {
	head := make([]byte, 8)
	if f, err := os.Open(raw); err == nil {
		io.ReadFull(f, head)
		f.Close()
	}
	var got string
	switch {
	case bytes.HasPrefix(head, []byte("%PDF-")):
		got = FormatPDF
	case bytes.HasPrefix(head, []byte(pwgSync)):
		got = FormatPWG
	case bytes.HasPrefix(head, []byte{0xff, 0xd8, 0xff}):
		got = FormatJPEG
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		got = FormatPNG
	default:
		os.Remove(raw)
		return nil, fail(goipp.StatusErrorDocumentFormatNotSupported, "the document is not a PDF, PWG raster, JPEG or PNG (typed by its content)")
	}
	if declared != "" && declared != FormatOctet && declared != got {
		os.Remove(raw)
		return nil, fail(goipp.StatusErrorDocumentFormatError, "the document is declared %s but its content is %s", declared, got)
	}
	if got != FormatPWG {
		ext := map[string]string{FormatPDF: "pdf", FormatJPEG: "jpg", FormatPNG: "png"}[got]
		return &spooled{path: raw, ctype: got, ext: ext}, nil
	}
	pdf := filepath.Join(s.spool, fmt.Sprintf("%d-%02d.pdf", id, idx))
	err := PWGToPDF(raw, pdf, s.o.Cfg.Limits.MaxPages)
	os.Remove(raw)
	if err != nil {
		os.Remove(pdf)
		return nil, fail(goipp.StatusErrorDocumentFormatError, "PWG raster: %v", err)
	}
	return &spooled{path: pdf, ctype: FormatPDF, ext: "pdf"}, nil
}

// internal logs err and answers server-error-internal-error.
func (s *Service) internal(what string, err error) *response {
	s.log.Error("ipp: "+what, "err", err)
	return fail(goipp.StatusErrorInternal, "internal error: could not %s", what)
}

// apiError is the API's error answer.
type apiError struct {
	Error struct {
		Code, Message, Field string
	} `json:"error"`
}

// submit hands the job to POST /v1/faxes's handler as a multipart form
// (to, client_ref ipp-<id>, the mapped options and the documents in
// order) and returns the faxbox job it created.
func (s *Service) submit(ctx context.Context, remote string, id JobID, sp *jobSpec, docs []*spooled) (*job.Job, *response) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() { pw.CloseWithError(writeForm(mw, id, sp, docs)) }()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "/v1/faxes", pr)
	if err != nil {
		pr.Close()
		return nil, s.internal("build the submission", err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.RemoteAddr = remote
	rec := &recorder{header: http.Header{}}
	s.o.Submit.ServeHTTP(rec, req)
	pr.CloseWithError(errors.New("ipp: submission answered"))
	if rec.status == http.StatusAccepted || rec.status == http.StatusOK {
		var j job.Job
		if err := json.Unmarshal(rec.body.Bytes(), &j); err != nil || j.ID == "" {
			return nil, s.internal("read the submission's answer", fmt.Errorf("status %d: %v", rec.status, err))
		}
		return &j, nil
	}
	var ae apiError
	json.Unmarshal(rec.body.Bytes(), &ae)
	s.log.Info("ipp: job refused", "job_id", id, "http", rec.status, "code", ae.Error.Code, "msg", ae.Error.Message)
	return nil, apiFailure(rec.status, ae)
}

// writeForm writes the submission's fields and files.
func writeForm(mw *multipart.Writer, id JobID, sp *jobSpec, docs []*spooled) error {
	fields := map[string]string{"to": sp.to, "client_ref": clientRef(id)}
	for k, v := range sp.fields {
		fields[k] = v
	}
	for _, k := range []string{"to", "client_ref", "page_size", "resolution", "max_attempts", "retry_interval"} {
		if v, ok := fields[k]; ok {
			if err := mw.WriteField(k, v); err != nil {
				return err
			}
		}
	}
	for i, d := range docs {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename="ipp-%d-%02d.%s"`, id, i, d.ext))
		h.Set("Content-Type", d.ctype)
		w, err := mw.CreatePart(h)
		if err != nil {
			return err
		}
		f, err := os.Open(d.path)
		if err != nil {
			return err
		}
		_, err = io.Copy(w, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return mw.Close()
}

// apiFailure maps the API's refusal to an IPP status.
func apiFailure(status int, ae apiError) *response {
	msg := ae.Error.Message
	if msg == "" {
		msg = fmt.Sprintf("the box refused the job (HTTP %d)", status)
	}
	st := goipp.StatusErrorInternal
	switch ae.Error.Code {
	case "invalid_number", "rejected_destination", "no_line_for_number", "invalid_field":
		st = goipp.StatusErrorAttributesOrValues
	case "unsupported_document":
		st = goipp.StatusErrorDocumentFormatNotSupported
	case "document_type_mismatch", "unreadable_document", "empty_document":
		st = goipp.StatusErrorDocumentFormatError
	case "too_large", "too_many_files":
		st = goipp.StatusErrorRequestEntity
	case "busy":
		st = goipp.StatusErrorBusy
	case "disk_full":
		st = goipp.StatusErrorTemporary
	case "request_timeout":
		st = goipp.StatusErrorTimeout
	}
	return &response{status: st, message: msg}
}

// recorder is the ResponseWriter the in-box submission answers into.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.body.Len() < 64<<10 {
		r.body.Write(p[:min(len(p), 64<<10-r.body.Len())])
	}
	return len(p), nil
}

// clientRef is the client_ref of IPP job id.
func clientRef(id JobID) string { return "ipp-" + strconv.Itoa(int(id)) }

// spoolWait is how long a document waits for a spool slot before the
// request is refused with server-error-busy.
const spoolWait = 5 * time.Second

// submitTimeout bounds one submission (storing and checking the documents).
const submitTimeout = 2 * time.Minute
