package api

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"github.com/faxbox/faxbox/firmware/engine"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/store"
)

func (s *Server) createFax(w http.ResponseWriter, r *http.Request) {
	if e := s.diskCheck(); e != nil {
		writeErr(w, e)
		return
	}
	sub, e := s.readMultipart(w, r, faxForm)
	if e != nil {
		writeErr(w, e)
		return
	}
	fr, e := s.validate(sub, s.Now())
	if e != nil {
		s.Store.RemoveDocuments(sub.id)
		writeErr(w, e)
		return
	}
	j, existed, e := s.create(fr)
	if e != nil {
		writeErr(w, e)
		return
	}
	w.Header().Set("Location", "/v1/faxes/"+j.ID)
	if existed {
		writeJSON(w, http.StatusOK, j)
		return
	}
	writeJSON(w, http.StatusAccepted, j)
}

// List is the answer of GET /v1/faxes.
type List struct {
	Items      []*job.Job `json:"items"`
	NextCursor string     `json:"next_cursor,omitempty"`
}

func (s *Server) listFaxes(w http.ResponseWriter, r *http.Request) { s.list(w, r, job.KindFax) }

// list serves GET /v1/faxes and /v1/calls.
func (s *Server) list(w http.ResponseWriter, r *http.Request, kind job.Kind) {
	q := r.URL.Query()
	f := store.Filter{Kind: kind, ClientRef: q.Get("client_ref"), Cursor: q.Get("cursor")}
	if v := q.Get("status"); v != "" {
		if !job.Status(v).Valid() {
			writeErr(w, errf(http.StatusBadRequest, "invalid_field", "status", "unknown status "+strconv.Quote(v)))
			return
		}
		f.Status = job.Status(v)
	}
	var e *Error
	if f.Since, f.Limit, e = pageQuery(q); e != nil {
		writeErr(w, e)
		return
	}
	if f.Cursor != "" && (len(f.Cursor) > 64 || controlChar(f.Cursor)) {
		writeErr(w, errf(http.StatusBadRequest, "invalid_field", "cursor", "bad cursor"))
		return
	}
	items, next, err := s.Store.List(f)
	if err != nil {
		writeErr(w, s.internal("storage_error", "could not list the jobs", err))
		return
	}
	for i, j := range items {
		if !j.Status.Terminal() {
			if fresh, err := s.Engine.Get(j.ID); err == nil {
				items[i] = fresh
			}
		}
	}
	if items == nil {
		items = []*job.Job{}
	}
	writeJSON(w, http.StatusOK, List{Items: items, NextCursor: next})
}

// job finds job {id} of kind, or answers 404.
func (s *Server) job(w http.ResponseWriter, r *http.Request, kind job.Kind) (*job.Job, bool) {
	id := r.PathValue("id")
	j, err := s.Engine.Get(id)
	if err == nil && j.Kind != kind {
		err = engine.ErrNotFound
	}
	if err != nil {
		writeErr(w, s.answer(err, "id", string(kind)+" job "+strconv.Quote(id), "storage_error", "could not read the job"))
		return nil, false
	}
	return j, true
}

func (s *Server) fax(w http.ResponseWriter, r *http.Request) (*job.Job, bool) {
	return s.job(w, r, job.KindFax)
}

func (s *Server) getFax(w http.ResponseWriter, r *http.Request) {
	if j, ok := s.fax(w, r); ok {
		writeJSON(w, http.StatusOK, j)
	}
}

func (s *Server) cancelFax(w http.ResponseWriter, r *http.Request) { s.cancel(w, r, job.KindFax) }

// cancel serves DELETE /v1/faxes/{id} and /v1/calls/{id}.
func (s *Server) cancel(w http.ResponseWriter, r *http.Request, kind job.Kind) {
	j, ok := s.job(w, r, kind)
	if !ok {
		return
	}
	j, err := s.Engine.Cancel(j.ID)
	switch {
	case err != nil:
		writeErr(w, s.answer(err, "id", "status "+string(j.Status), "storage_error", "could not cancel the job"))
	case j.Status.Terminal():
		writeJSON(w, http.StatusOK, j)
	default:
		// In a call: the hangup is under way; the result ends the job.
		writeJSON(w, http.StatusAccepted, j)
	}
}

func (s *Server) retryFax(w http.ResponseWriter, r *http.Request) {
	j, ok := s.fax(w, r)
	if !ok {
		return
	}
	was := j.Status
	j, err := s.Engine.Retry(j.ID)
	switch {
	case err != nil:
		writeErr(w, s.answer(err, "id", "status "+string(was), "storage_error", "could not queue the job again"))
	default:
		writeJSON(w, http.StatusAccepted, j)
	}
}

func (s *Server) document(w http.ResponseWriter, r *http.Request) {
	j, ok := s.fax(w, r)
	if !ok {
		return
	}
	format, e := docFormat(r)
	if e != nil {
		writeErr(w, e)
		return
	}
	if j.Purged {
		writeErr(w, errf(http.StatusGone, "document_purged", "id", "the job's documents were purged after the retention period"))
		return
	}
	if j.Pages == 0 {
		writeErr(w, errf(http.StatusConflict, "not_converted", "id", "the document is not converted yet (status "+string(j.Status)+")"))
		return
	}
	tif := filepath.Join(s.Store.DocDir(j.ID), engine.FaxFile)
	if _, err := os.Stat(tif); err != nil {
		writeErr(w, errf(http.StatusGone, "document_missing", "id", "the converted document is missing"))
		return
	}
	s.serveDocument(w, r, j.ID, format, tif, "")
}
