package api

import (
	"net/http"
	"path/filepath"

	"github.com/faxbox/faxbox/firmware/ipp"
)

// handleIPP serves the IPP FaxOut printer (print to fax) at ipp.Path when
// ipp.enabled is set. Its jobs go through POST /v1/faxes's own handler
// (upload slots, disk check, validation, storage); the IPP service checks
// its clients itself (ipp.allow_ips or HTTP Basic with a token).
func (s *Server) handleIPP(mux *http.ServeMux) {
	if !s.Cfg.IPP.Enabled || s.Store == nil || s.Engine == nil {
		return
	}
	svc, err := ipp.New(ipp.Options{Cfg: s.Cfg, Submit: s.upload(s.createFax, writeErr), Jobs: s.Engine, Store: s.Store,
		SpoolDir: filepath.Join(s.Store.Dir(), "ipp-spool"), Log: s.Log, Now: s.Now, Started: s.Started})
	if err != nil {
		s.Log.Error("api: the IPP service cannot start", "component", "api", "err", err)
		return
	}
	mux.Handle("POST "+ipp.Path, svc)
	mux.Handle("POST "+ipp.Path+"/{job}", svc)
}
