package api

import (
	"net/http"

	"github.com/faxbox/faxbox/firmware/web"
)

// page serves the office console (firmware/web) at "/". It needs no token:
// the console asks for one and sends it with every API call.
func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	s.serveWeb(w, r, web.Index)
}

// asset serves the console's style sheet and script at /ui/{file}.
func (s *Server) asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if name == web.Index {
		http.Redirect(w, r, "/", http.StatusMovedPermanently)
		return
	}
	s.serveWeb(w, r, name)
}

// serveWeb writes one embedded file with the console's security headers and
// an ETag, so a browser revalidates instead of downloading it again.
func (s *Server) serveWeb(w http.ResponseWriter, r *http.Request, name string) {
	f, ok := web.Lookup(name)
	if !ok {
		writeErr(w, errf(http.StatusNotFound, "not_found", "", "no such file of the web console: "+name))
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", web.ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.ETag)
	if r.Header.Get("If-None-Match") == f.ETag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", f.ContentType)
	w.Write(f.Body)
}
