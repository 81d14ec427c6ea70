package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/faxbox/faxbox/firmware/engine"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/store"
)

// Error is the body of every error answer:
// {"error": {"code": "invalid_number", "message": "…", "field": "to"}}.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func errf(status int, code, field, msg string) *Error {
	return &Error{Status: status, Code: code, Field: field, Message: msg}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeErr(w http.ResponseWriter, e *Error) {
	writeJSON(w, e.Status, map[string]*Error{"error": e})
}

// answers is the one table from the engine's and the store's errors to what
// a client is told: status, code and message. Handlers add the field and a
// detail; an error not in the table is the box's own (500, logged).
var answers = []struct {
	err          error
	status       int
	code, reason string
}{
	{engine.ErrNotFound, http.StatusNotFound, "not_found", "no such job"},
	{engine.ErrNoLine, http.StatusNotFound, "not_found", "no such line"},
	{job.ErrBadLine, http.StatusBadRequest, "invalid_field", "a line is group/n, n a number from 1 without leading zeros"},
	{engine.ErrFinished, http.StatusConflict, "already_finished", "the job already ended"},
	{engine.ErrDelivered, http.StatusConflict, "already_delivered", "the fax was delivered; it is never sent twice"},
	{engine.ErrNotFailed, http.StatusConflict, "not_retryable", "only failed, cancelled or waiting jobs can be retried"},
	{engine.ErrNoDocs, http.StatusGone, "document_purged", "the job's documents were purged after the retention period"},
	{store.ErrDiskFull, http.StatusInsufficientStorage, "disk_full", "the box's disk is full; nothing was accepted"},
}

// answer turns err into the client's answer by the table; detail (may be
// "") is appended to the message. Anything else is logged and answered 500
// with code internal and what failed, never the internal error's text.
func (s *Server) answer(err error, field, detail, internal, what string) *Error {
	for _, a := range answers {
		if errors.Is(err, a.err) {
			msg := a.reason
			if detail != "" {
				msg += " (" + detail + ")"
			}
			return errf(a.status, a.code, field, msg)
		}
	}
	return s.internal(internal, what, err)
}
