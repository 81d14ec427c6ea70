// Package api is faxbox's HTTP API (v1, JSON) and the classic compatibility
// endpoints. See docs/openapi.yaml; a test checks that every route registered
// here is described there and vice versa.
package api

import (
	"context"
	"crypto/subtle"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/engine"
	"github.com/faxbox/faxbox/firmware/events"
	"github.com/faxbox/faxbox/firmware/rules"
	"github.com/faxbox/faxbox/firmware/store"
)

// Renderer turns a job's fax TIFF into a PDF for download.
type Renderer interface {
	ToPDF(ctx context.Context, tiffPath, pdfPath string) error
}

// Status reports extra parts of /v1/status (webhook backlog and the like).
type StatusFunc func() map[string]any

// Server serves the API.
type Server struct {
	Cfg      config.Config
	Store    *store.DB
	Engine   *engine.Engine
	Bus      *events.Bus
	Renderer Renderer
	Version  string
	Log      *slog.Logger
	Now      func() time.Time
	// Extra adds fields to /v1/status.
	Extra StatusFunc
	// Metrics, when set, adds lines in the Prometheus text format to
	// /metrics.
	Metrics func(io.Writer)
	// Calendars, when set, reports the subscribed calendars' state (last
	// sync, error) as /v1/status's calendars.
	Calendars func() any
	// Started is when the box came up.
	Started time.Time
	// Auth, when set, admits the office directory's users besides the
	// config's tokens; Book answers GET /v1/directory and names
	// click-to-call agents (both package directory, nil without one).
	Auth Authenticator
	Book PhoneBook
	// SelfTests runs the self-test and trunk qualifications (nil: none).
	SelfTests SelfTester
	// LinkKey signs the inbox's download URLs (routing.LinkPath); a
	// request with a valid, unexpired signature needs no token. Nil: no
	// signed URL is accepted.
	LinkKey []byte

	allow   rules.Nets
	uploads chan struct{} // one slot per submission being read
}

// Route is one registered endpoint.
type Route struct {
	Method, Path string
	Auth         string // token|none|compat|token_or_link (a signed download URL)
	h            http.HandlerFunc
}

// Routes lists the endpoints in registration order.
func (s *Server) Routes() []Route {
	return []Route{
		{"GET", "/healthz", "none", s.healthz},
		{"GET", "/", "none", s.page},
		{"GET", "/ui/{file}", "none", s.asset},
		{"POST", "/v1/faxes", "token", s.upload(s.createFax, writeErr)},
		{"GET", "/v1/faxes", "token", s.listFaxes},
		{"GET", "/v1/faxes/{id}", "token", s.getFax},
		{"DELETE", "/v1/faxes/{id}", "token", s.cancelFax},
		{"POST", "/v1/faxes/{id}/retry", "token", s.retryFax},
		{"GET", "/v1/faxes/{id}/document", "token", s.document},
		{"POST", "/v1/preview", "token", s.upload(s.preview, writeErr)},
		{"GET", "/v1/events", "token", s.events},
		{"GET", "/v1/status", "token", s.status},
		{"GET", "/v1/lines", "token", s.lines},
		{"POST", "/v1/lines/{group}/{n}/busy", "token", s.lineBusy},
		{"DELETE", "/v1/lines/{group}/{n}/busy", "token", s.lineBusy},
		{"GET", "/metrics", "token", s.metrics},
		{"POST", "/v1/calls", "token", s.upload(s.createCall, writeErr)},
		{"GET", "/v1/calls", "token", s.listCalls},
		{"GET", "/v1/calls/{id}", "token", s.getCall},
		{"DELETE", "/v1/calls/{id}", "token", s.cancelCall},
		{"GET", "/v1/directory", "token", s.searchDirectory},
		{"GET", "/v1/inbox", "token", s.listInbox},
		{"GET", "/v1/inbox/{id}", "token", s.getInbox},
		{"DELETE", "/v1/inbox/{id}", "token", s.deleteInbox},
		{"GET", "/v1/inbox/{id}/document", "token_or_link", s.inboxDocument},
		{"POST", "/v1/inbox/{id}/read", "token", s.markInbox},
		{"DELETE", "/v1/inbox/{id}/read", "token", s.markInbox},
		{"POST", "/v1/selftest", "token", s.startSelfTest},
		{"GET", "/v1/selftest", "token", s.getSelfTest},
		{"POST", "/v1/trunks/{name}/qualify", "token", s.startQualify},
		{"GET", "/v1/trunks/{name}/qualify", "token", s.getQualify},
		{"POST", "/faxservice/", "compat", s.upload(s.faxservice, writeCompatFail)},
		{"GET", "/callback", "compat", s.callbackCompat},
	}
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler {
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Log == nil {
		s.Log = slog.Default()
	}
	s.uploads = make(chan struct{}, max(s.Cfg.Limits.MaxConcurrentUploads, 1))
	s.allow, _ = rules.ParseNets(s.Cfg.Compat.AllowIPs) // validated with the config
	mux := http.NewServeMux()
	for _, rt := range s.Routes() {
		h := rt.h
		switch rt.Auth {
		case "token":
			h = s.requireToken(s.permit(rt, h))
		case "token_or_link":
			h = s.signedOrToken(h, s.requireToken(s.permit(rt, h)))
		case "compat":
			h = s.requireCompat(h)
		}
		pattern := rt.Method + " " + rt.Path
		if rt.Path == "/" {
			pattern = "GET /{$}"
		}
		mux.HandleFunc(pattern, h)
	}
	s.handleIPP(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, errf(http.StatusNotFound, "not_found", "", "no such endpoint: "+r.Method+" "+r.URL.Path))
	})
	return s.recoverer(s.limitBodies(mux))
}

func (s *Server) recoverer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.Log.Error("api: panic", "path", r.URL.Path, "panic", v)
				writeErr(w, errf(http.StatusInternalServerError, "internal", "", "internal error"))
			}
		}()
		h.ServeHTTP(w, r)
	})
}

func (s *Server) tokenOK(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return false
	}
	good := 0
	for _, t := range s.Cfg.Tokens {
		good |= subtle.ConstantTimeCompare([]byte(tok), []byte(t))
	}
	return good == 1
}

func (s *Server) requireToken(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.tokenOK(r) {
			if dr, ok := s.directoryAuth(r); ok {
				h(w, dr) // a directory user: permit checks its rights
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="faxbox"`)
			writeErr(w, errf(http.StatusUnauthorized, "unauthorized", "", "missing or wrong bearer token"))
			return
		}
		h(w, r)
	}
}

// requireCompat admits a valid token or a client address on the allow list.
func (s *Server) requireCompat(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.Cfg.Compat.Enabled {
			writeErr(w, errf(http.StatusNotFound, "not_found", "", "compatibility endpoints are disabled"))
			return
		}
		if s.tokenOK(r) || s.ipAllowed(r) {
			h(w, r)
			return
		}
		writeErr(w, errf(http.StatusForbidden, "forbidden", "", "this address may not use the compatibility endpoint (compat.allow_ips)"))
	}
}

func (s *Server) ipAllowed(r *http.Request) bool { return s.allow.ContainsAddr(r.RemoteAddr) }

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
