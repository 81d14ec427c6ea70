package api

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/faxbox/faxbox/firmware/job"
)

// faxservice is the classic PHP endpoint: form fields fax, faxId, maxRetries,
// returnUrl and the upload file. It answers {"status":"success"} or
// {"status":"fail"} (always HTTP 200, as the classic script did, with a
// "message" saying why it failed). maxRetries counts dial attempts after the
// first. The result goes to GET returnUrl?fax=&faxId=&status=&message=.
// faxId doubles as the idempotency key: the same faxId with the same content
// is accepted once.
func (s *Server) faxservice(w http.ResponseWriter, r *http.Request) {
	fail := func(e *Error) {
		s.Log.Info("faxservice: rejected", "code", e.Code, "field", e.Field, "msg", e.Message)
		writeJSON(w, http.StatusOK, map[string]string{"status": "fail", "code": e.Code, "message": e.Message})
	}
	if e := s.diskCheck(); e != nil {
		fail(e)
		return
	}
	sub, e := s.readMultipart(w, r, "file")
	if e != nil {
		fail(e)
		return
	}
	f := sub.fields
	drop := func(e *Error) {
		s.Store.RemoveDocuments(sub.id)
		fail(e)
	}
	for _, k := range []string{"fax", "faxId", "returnUrl"} {
		if f[k] == "" {
			drop(errf(http.StatusBadRequest, "missing_field", k, k+" is required"))
			return
		}
	}
	if len(sub.files) != 1 {
		drop(errf(http.StatusBadRequest, "invalid_request", "file", "exactly one file is expected"))
		return
	}
	if !reRef.MatchString(f["faxId"]) {
		drop(errf(http.StatusBadRequest, "invalid_field", "faxId", "faxId must be 1 to 128 printable ASCII characters without spaces"))
		return
	}
	u, err := url.Parse(f["returnUrl"])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		drop(errf(http.StatusBadRequest, "invalid_url", "returnUrl", "returnUrl must be an absolute http:// or https:// URL"))
		return
	}
	retries := 0
	if v := f["maxRetries"]; v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 || n >= s.Cfg.Limits.MaxAttempts {
			drop(errf(http.StatusBadRequest, "invalid_field", "maxRetries", "maxRetries must be 0 to "+strconv.Itoa(s.Cfg.Limits.MaxAttempts-1)))
			return
		}
		retries = n
	}
	v1 := &submission{id: sub.id, files: sub.files, paths: sub.paths, fields: map[string]string{
		"to": f["fax"], "client_ref": "faxservice:" + f["faxId"], "max_attempts": strconv.Itoa(retries + 1),
	}}
	fr, e := s.validate(v1, s.Now())
	if e != nil {
		if e.Field == "to" {
			e.Field = "fax"
		}
		drop(e)
		return
	}
	fr.j.Compat = &job.Compat{FaxID: f["faxId"], ReturnURL: u.String()}
	fr.hash = contentHash(f, sub.files)
	if _, _, e := s.create(fr); e != nil {
		fail(e)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "success"})
}
