package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/faxbox/faxbox/firmware/directory"
)

// Authenticator admits API clients besides the config's tokens: the office
// directory's users (package directory), by bearer token or HTTP Basic.
// An error means not admitted.
type Authenticator interface {
	Authenticate(ctx context.Context, c directory.Credentials) (directory.Principal, error)
}

// PhoneBook answers GET /v1/directory and names click-to-call agents
// (package directory).
type PhoneBook interface {
	Search(q string) ([]directory.Entry, error)
	Agent(q string) (string, error)
}

// principalKey keys the directory user a request was admitted as.
type principalKey struct{}

// directoryAuth admits r through s.Auth (a bearer token, or HTTP Basic):
// it returns r carrying the principal, or false.
func (s *Server) directoryAuth(r *http.Request) (*http.Request, bool) {
	if s.Auth == nil {
		return r, false
	}
	var c directory.Credentials
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		c.Token = tok
	} else if u, p, ok := r.BasicAuth(); ok {
		c.User, c.Password = u, p
	} else {
		return r, false
	}
	p, err := s.Auth.Authenticate(r.Context(), c)
	if err != nil {
		return r, false
	}
	return r.WithContext(context.WithValue(r.Context(), principalKey{}, p)), true
}

// right is what a directory user needs for a route.
type right int

const (
	rightAdmin right = iota // the config's tokens only
	rightAny                // any admitted directory user
	rightSend               // members of ldap.send_group
	rightCall               // members of ldap.call_group
)

// routeRight is the right route method+path asks of a directory user.
// Routes not named here (line busy, and any added later) are for the
// config's tokens only.
func routeRight(method, path string) right {
	switch {
	case path == "/v1/faxes" || strings.HasPrefix(path, "/v1/faxes/") || path == "/v1/preview" || strings.HasPrefix(path, "/v1/inbox"):
		return rightSend
	case path == "/v1/calls" || strings.HasPrefix(path, "/v1/calls/"):
		return rightCall
	case method == http.MethodGet && (path == "/v1/status" || path == "/v1/lines" || path == "/v1/events" || path == "/metrics" || path == "/v1/directory"):
		return rightAny
	}
	return rightAdmin
}

// permit refuses (403) a directory user without the right rt asks; a
// request admitted by a config token passes.
func (s *Server) permit(rt Route, h http.HandlerFunc) http.HandlerFunc {
	need := routeRight(rt.Method, rt.Path)
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := r.Context().Value(principalKey{}).(directory.Principal)
		if ok && !(need == rightAny || (need == rightSend && p.Send) || (need == rightCall && p.Call)) {
			writeErr(w, errf(http.StatusForbidden, "forbidden", "",
				"directory user "+p.Login+" may not do this (its groups grant: "+grants(p)+")"))
			return
		}
		h(w, r)
	}
}

func grants(p directory.Principal) string {
	var g []string
	if p.Send {
		g = append(g, "sending faxes")
	}
	if p.Call {
		g = append(g, "placing calls")
	}
	if len(g) == 0 {
		return "nothing"
	}
	return strings.Join(g, ", ")
}

// searchDirectory is GET /v1/directory?q=TEXT: the phone book's entries
// matching q.
func (s *Server) searchDirectory(w http.ResponseWriter, r *http.Request) {
	if s.Book == nil {
		writeErr(w, errf(http.StatusNotFound, "not_found", "", "this box has no directory (ldap.url)"))
		return
	}
	found, err := s.Book.Search(r.URL.Query().Get("q"))
	if e := directoryErr(err, "q"); e != nil {
		writeErr(w, e)
		return
	}
	if found == nil {
		found = []directory.Entry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": found})
}

// directoryAgent turns a click-to-call agent given by name or login into
// the directory's number for it (an agent of digits stays).
func (s *Server) directoryAgent(req *CallRequest) *Error {
	if s.Book == nil || req.Agent == "" || reExten.MatchString(req.Agent) {
		return nil
	}
	n, err := s.Book.Agent(req.Agent)
	if e := directoryErr(err, "agent"); e != nil {
		return e
	}
	req.Agent = n
	return nil
}

// directoryErr maps a directory lookup's error to the answer.
func directoryErr(err error, field string) *Error {
	var amb *directory.AmbiguousError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &amb):
		return errf(http.StatusBadRequest, "ambiguous_name", field, amb.Error())
	case errors.Is(err, directory.ErrNotFound):
		return errf(http.StatusBadRequest, "unknown_name", field, err.Error())
	case errors.Is(err, directory.ErrQuery):
		return errf(http.StatusBadRequest, "invalid_field", field, err.Error())
	case errors.Is(err, directory.ErrNoCopy):
		return errf(http.StatusServiceUnavailable, "directory_unavailable", field, err.Error())
	}
	return errf(http.StatusInternalServerError, "internal", field, "directory lookup failed")
}
