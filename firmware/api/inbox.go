package api

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"github.com/faxbox/faxbox/firmware/inbox"
	"github.com/faxbox/faxbox/firmware/store"
)

// InboxList is the answer of GET /v1/inbox.
type InboxList struct {
	Items      []*inbox.Fax `json:"items"`
	NextCursor inbox.ID     `json:"next_cursor,omitempty"`
}

// inboxFilter reads GET /v1/inbox's query: status, read, caller_id, did,
// since, limit, cursor.
func inboxFilter(r *http.Request) (inbox.Filter, *Error) {
	q := r.URL.Query()
	f := inbox.Filter{CallerID: q.Get("caller_id"), DID: q.Get("did")}
	if v := q.Get("status"); v != "" {
		if !inbox.Status(v).Valid() {
			return f, errf(http.StatusBadRequest, "invalid_field", "status", "status must be received, partial or failed")
		}
		f.Status = inbox.Status(v)
	}
	if v := q.Get("read"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return f, errf(http.StatusBadRequest, "invalid_field", "read", "read must be true or false")
		}
		f.Read = &b
	}
	for field, v := range map[string]string{"caller_id": f.CallerID, "did": f.DID} {
		if len(v) > 32 || controlChar(v) {
			return f, errf(http.StatusBadRequest, "invalid_field", field, field+" must be a phone number")
		}
	}
	var e *Error
	if f.Since, f.Limit, e = pageQuery(q); e != nil {
		return f, e
	}
	if v := q.Get("cursor"); v != "" {
		id, err := inbox.ParseID(v)
		if err != nil {
			return f, errf(http.StatusBadRequest, "invalid_field", "cursor", "bad cursor")
		}
		f.Cursor = id
	}
	return f, nil
}

// listInbox serves GET /v1/inbox: received faxes, newest first.
func (s *Server) listInbox(w http.ResponseWriter, r *http.Request) {
	f, e := inboxFilter(r)
	if e != nil {
		writeErr(w, e)
		return
	}
	items, next, err := s.Store.ListReceived(f)
	if err != nil {
		writeErr(w, s.internal("storage_error", "could not list the received faxes", err))
		return
	}
	writeJSON(w, http.StatusOK, InboxList{Items: items, NextCursor: next})
}

// received finds received fax {id}, or answers 404.
func (s *Server) received(w http.ResponseWriter, r *http.Request) (*inbox.Fax, bool) {
	id, err := inbox.ParseID(r.PathValue("id"))
	if err != nil {
		writeErr(w, errf(http.StatusNotFound, "not_found", "id", "no such received fax"))
		return nil, false
	}
	f, err := s.Store.GetReceived(id)
	if errors.Is(err, store.ErrNotFound) {
		writeErr(w, errf(http.StatusNotFound, "not_found", "id", "no such received fax ("+string(id)+")"))
		return nil, false
	}
	if err != nil {
		writeErr(w, s.internal("storage_error", "could not read the received fax", err))
		return nil, false
	}
	return f, true
}

func (s *Server) getInbox(w http.ResponseWriter, r *http.Request) {
	if f, ok := s.received(w, r); ok {
		writeJSON(w, http.StatusOK, f)
	}
}

// deleteInbox serves DELETE /v1/inbox/{id}: the fax and its documents go.
func (s *Server) deleteInbox(w http.ResponseWriter, r *http.Request) {
	f, ok := s.received(w, r)
	if !ok {
		return
	}
	if err := s.Store.DeleteReceived(f.ID, s.Now()); errors.Is(err, store.ErrNotFound) {
		writeErr(w, errf(http.StatusNotFound, "not_found", "id", "no such received fax"))
		return
	} else if err != nil {
		writeErr(w, s.internal("storage_error", "could not delete the received fax", err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// markInbox serves POST (read) and DELETE (unread) /v1/inbox/{id}/read.
func (s *Server) markInbox(w http.ResponseWriter, r *http.Request) {
	f, ok := s.received(w, r)
	if !ok {
		return
	}
	read := r.Method == http.MethodPost
	f, err := s.Store.UpdateReceived(f.ID, func(x *inbox.Fax) error { x.Read = read; return nil })
	if errors.Is(err, store.ErrNotFound) {
		writeErr(w, errf(http.StatusNotFound, "not_found", "id", "no such received fax"))
		return
	} else if err != nil {
		writeErr(w, s.internal("storage_error", "could not mark the received fax", err))
		return
	}
	writeJSON(w, http.StatusOK, f)
}

// inboxDocument serves GET /v1/inbox/{id}/document?format=pdf|tiff: the
// checked PDF made at reception (or, if that failed, one rendered now), or
// the TIFF as Asterisk received it.
func (s *Server) inboxDocument(w http.ResponseWriter, r *http.Request) {
	f, ok := s.received(w, r)
	if !ok {
		return
	}
	format, e := docFormat(r)
	if e != nil {
		writeErr(w, e)
		return
	}
	switch {
	case f.Purged:
		writeErr(w, errf(http.StatusGone, "document_purged", "id", "the received fax's documents were purged after the retention period"))
		return
	case !f.TIFF:
		writeErr(w, errf(http.StatusNotFound, "no_document", "id", "no page of this fax arrived (status "+string(f.Status)+")"))
		return
	}
	dir := s.Store.DocDir(string(f.ID))
	tif := filepath.Join(dir, inbox.TIFFFile)
	if _, err := os.Stat(tif); err != nil {
		writeErr(w, errf(http.StatusGone, "document_missing", "id", "the received document is missing"))
		return
	}
	pdf := ""
	if f.PDF {
		pdf = filepath.Join(dir, inbox.PDFFile)
	}
	s.serveDocument(w, r, string(f.ID), format, tif, pdf)
}
