package api

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/mail"
	"github.com/faxbox/faxbox/firmware/rules"
	"github.com/faxbox/faxbox/firmware/store"
)

// The SMTP listener (e-mail to fax) submits through the Server: the same
// validation, storage and engine hand-off as POST /v1/faxes.
var _ mail.Submitter = (*Server)(nil)

// CheckNumber validates a destination as POST /v1/faxes does (number
// syntax, the destination rules, a line that can dial it); a refusal is a
// *mail.SubmitError with the API's error code.
func (s *Server) CheckNumber(to string) error {
	if rules.Number(to) != nil {
		return &mail.SubmitError{Code: "invalid_number", Message: "the number must be 3 to 20 digits"}
	}
	if reason, no := s.Engine.Rejected(to); no {
		return &mail.SubmitError{Code: "rejected_destination", Message: "the box's destination rules refuse this number: " + reason}
	}
	if _, err := s.Engine.Route(to, ""); err != nil {
		return &mail.SubmitError{Code: "no_line_for_number", Message: "no line can dial this number"}
	}
	return nil
}

// SubmitFax stores a fax job made from a mail, as POST /v1/faxes would from
// fields to, client_ref and notify_email (kept only when a relay is
// configured) and the documents in order, and hands it to the engine. A job
// already made under the same client_ref with the same content is answered
// with its id. A refusal is a *mail.SubmitError.
func (s *Server) SubmitFax(m mail.Submission) (string, error) {
	if e := s.diskCheck(); e != nil {
		return "", mailErr(e)
	}
	fields := map[string]string{"to": m.To}
	if m.ClientRef != "" {
		fields["client_ref"] = m.ClientRef
	}
	if m.NotifyEmail != "" && s.Cfg.SMTP.Enabled() {
		fields["notify_email"] = m.NotifyEmail
	}
	sub := &submission{fields: fields, id: job.NewFaxID()}
	var total int64
	for _, d := range m.Docs {
		f, e := s.storeMailDoc(sub, d, s.Cfg.Limits.MaxUploadBytes-total)
		if e != nil {
			s.Store.RemoveDocuments(sub.id)
			return "", mailErr(e)
		}
		total += f.Size
		sub.files = append(sub.files, f)
	}
	fr, e := s.validate(sub, s.Now())
	if e != nil {
		s.Store.RemoveDocuments(sub.id)
		return "", mailErr(e)
	}
	j, _, e := s.create(fr)
	if e != nil {
		return "", mailErr(e)
	}
	return j.ID, nil
}

// storeMailDoc writes one mail document as storeFile writes an upload:
// typed by its content, refused when its name or declared type names
// another supported type, checked.
func (s *Server) storeMailDoc(sub *submission, d mail.Document, limit int64) (job.File, *Error) {
	name := clean(d.Name)
	if len(sub.files) >= 20 {
		return job.File{}, errf(http.StatusBadRequest, "too_many_files", "file", "at most 20 documents per fax")
	}
	if int64(len(d.Data)) > limit {
		return job.File{}, errf(http.StatusRequestEntityTooLarge, "too_large", "file", fmt.Sprintf("the documents exceed %d bytes", s.Cfg.Limits.MaxUploadBytes))
	}
	if len(d.Data) == 0 {
		return job.File{}, errf(http.StatusBadRequest, "empty_document", "file", "document "+strconv.Quote(name)+" is empty")
	}
	typ := sniff(d.Data[:min(len(d.Data), 512)])
	if typ == "" {
		return job.File{}, errf(http.StatusUnsupportedMediaType, "unsupported_document", "file",
			"document "+strconv.Quote(name)+" is not a PDF, TIFF, PNG, JPEG or plain text document")
	}
	for _, decl := range []string{strings.ToLower(filepath.Ext(name)), strings.ToLower(d.ContentType)} {
		if dt := declaredTypes[decl]; dt != "" && dt != typ {
			return job.File{}, errf(http.StatusUnsupportedMediaType, "document_type_mismatch", "file",
				fmt.Sprintf("document %s is declared as %s (%s) but its content is %s", strconv.Quote(name), dt, decl, typ))
		}
	}
	rel := fmt.Sprintf("in-%02d.%s", len(sub.files), typ)
	size, sum, err := s.Store.WriteDocument(sub.id, rel, bytes.NewReader(d.Data), limit)
	switch {
	case errors.Is(err, store.ErrTooLarge):
		return job.File{}, errf(http.StatusRequestEntityTooLarge, "too_large", "file", fmt.Sprintf("the documents exceed %d bytes", s.Cfg.Limits.MaxUploadBytes))
	case err != nil:
		return job.File{}, s.storeErr(err)
	}
	if e := s.checkDocument(filepath.Join(s.Store.DocDir(sub.id), rel), typ); e != nil {
		e.Message = "document " + strconv.Quote(name) + ": " + e.Message
		return job.File{}, e
	}
	sub.paths = append(sub.paths, rel)
	return job.File{Name: name, Type: typ, Size: size, SHA256: sum, Path: rel}, nil
}

// mailErr turns an API error into the listener's: 5xx answers (the box's
// disk, storage) are temporary, the rest refuse the mail.
func mailErr(e *Error) *mail.SubmitError {
	return &mail.SubmitError{Code: e.Code, Message: e.Message, Temporary: e.Status >= 500}
}

// notifyField reads notify_email into j: a plain address (mail.CheckAddress),
// refused with 422 mail_unavailable when the box has no relay to send the
// result with.
func (s *Server) notifyField(f map[string]string, j *job.Job) *Error {
	v, ok := f["notify_email"]
	if !ok || v == "" {
		return nil
	}
	addr, err := mail.CheckAddress(v)
	if err != nil {
		return errf(http.StatusBadRequest, "invalid_field", "notify_email", "notify_email must be one plain e-mail address (name@example.com)")
	}
	if !s.Cfg.SMTP.Enabled() {
		return errf(http.StatusUnprocessableEntity, "mail_unavailable", "notify_email", "the box has no mail relay configured (smtp.host); it cannot send result mails")
	}
	j.NotifyEmail = addr
	return nil
}
