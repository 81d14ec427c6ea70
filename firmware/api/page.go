package api

import (
	_ "embed"
	"net/http"
)

//go:embed page.html
var pageHTML []byte

// page is the office users' web page: queue, history, send form, lines. It
// talks to the same API with a token the user pastes once (kept in the
// browser's localStorage).
func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'")
	w.Write(pageHTML)
}
