package api

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"

	"github.com/faxbox/faxbox/firmware/job"
)

// faxserviceForm is what POST /faxservice/ reads; the classic script read
// only these, so other fields are dropped, not refused.
var faxserviceForm = form{file: "file", lax: true, fields: map[string]bool{
	"fax": true, "faxId": true, "maxRetries": true, "returnUrl": true,
}}

// writeCompatFail answers the classic endpoint's failure shape,
// {"status":"fail","code":…,"message":…}: HTTP 200 as the classic script did,
// except 503 when the box is too busy to read the request (with Retry-After).
func writeCompatFail(w http.ResponseWriter, e *Error) {
	status := http.StatusOK
	if e.Status == http.StatusServiceUnavailable {
		status = e.Status
	}
	writeJSON(w, status, map[string]string{"status": "fail", "code": e.Code, "message": e.Message})
}

// faxservice is the classic PHP endpoint: form fields fax, faxId, maxRetries,
// returnUrl and the upload file. It answers {"status":"success"} or
// {"status":"fail"} (HTTP 200, as the classic script did, with a "code" and a
// "message" saying why it failed; 503 only when every upload slot is taken). maxRetries counts dial attempts after the
// first. The result goes to GET returnUrl?fax=&faxId=&status=&message=.
// Every request with new content is a new job, as the classic script queued
// every request: a faxId sent again with another document (or number) is
// queued again; an identical resubmission is accepted once.
func (s *Server) faxservice(w http.ResponseWriter, r *http.Request) {
	fail := func(e *Error) {
		s.Log.Info("faxservice: rejected", "component", "api", "code", e.Code, "field", e.Field, "msg", e.Message)
		writeCompatFail(w, e)
	}
	if e := s.diskCheck(); e != nil {
		fail(e)
		return
	}
	sub, e := s.readMultipart(w, r, faxserviceForm)
	if e != nil {
		fail(e)
		return
	}
	fr, e := s.faxserviceJob(sub)
	if e != nil {
		s.Store.RemoveDocuments(sub.id)
		fail(e)
		return
	}
	if _, _, e := s.create(fr); e != nil {
		fail(e)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "success"})
}

// faxserviceJob validates a classic submission and builds its job.
func (s *Server) faxserviceJob(sub *submission) (*faxRequest, *Error) {
	f := sub.fields
	for _, k := range []string{"fax", "faxId", "returnUrl"} {
		if f[k] == "" {
			return nil, errf(http.StatusBadRequest, "missing_field", k, k+" is required")
		}
	}
	if len(sub.files) != 1 {
		return nil, errf(http.StatusBadRequest, "invalid_request", "file", "exactly one file is expected")
	}
	if !reRef.MatchString(f["faxId"]) {
		return nil, errf(http.StatusBadRequest, "invalid_field", "faxId", "faxId must be 1 to 128 printable ASCII characters without spaces")
	}
	if e := s.checkURL("returnUrl", f["returnUrl"]); e != nil {
		return nil, e
	}
	retries := 0
	if v := f["maxRetries"]; v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 || n >= s.Cfg.Limits.MaxAttempts {
			return nil, errf(http.StatusBadRequest, "invalid_field", "maxRetries", "maxRetries must be 0 to "+strconv.Itoa(s.Cfg.Limits.MaxAttempts-1))
		}
		retries = n
	}
	hash := contentHash(f, sub.files)
	v1 := &submission{id: sub.id, files: sub.files, paths: sub.paths, fields: map[string]string{
		"to": f["fax"], "client_ref": compatRef(f["faxId"], hash), "max_attempts": strconv.Itoa(retries + 1),
	}}
	fr, e := s.validate(v1, s.Now())
	if e != nil {
		if e.Field == "to" {
			e.Field = "fax"
		}
		return nil, e
	}
	fr.j.Compat = &job.Compat{FaxID: f["faxId"], ReturnURL: f["returnUrl"]}
	fr.hash = hash
	return fr, nil
}

// compatRef is the client_ref of a classic submission: the faxId and its
// content's hash, so the same faxId with other content is another job and an
// identical resubmission finds the first. A faxId too long to keep readable
// within client_ref's 128 characters is itself hashed.
func compatRef(faxID, hash string) string {
	const prefix = "faxservice:"
	if len(prefix)+len(faxID)+1+16 > 128 {
		sum := sha256.Sum256([]byte(faxID))
		faxID = hex.EncodeToString(sum[:16])
	}
	return prefix + faxID + ":" + hash[:16]
}
