package api

import (
	"errors"
	"net/http"

	"github.com/faxbox/faxbox/firmware/inbox"
	"github.com/faxbox/faxbox/firmware/routing"
)

// signedOrToken admits a request carrying a download link's signature
// (expires, sig: see package routing) when the signature is right and the
// link has not expired, without a token; a request without one goes
// through withToken. A wrong or expired signature is refused (403), never
// passed on to the token check.
func (s *Server) signedOrToken(signed, withToken http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if !routing.Signed(q) {
			withToken(w, r)
			return
		}
		id, err := inbox.ParseID(r.PathValue("id"))
		if err == nil {
			err = routing.VerifyLink(s.LinkKey, id, q, s.Now())
		}
		switch {
		case errors.Is(err, routing.ErrLinkExpired):
			writeErr(w, errf(http.StatusForbidden, "link_expired", "expires", "the download link has expired; fetch the document with a token"))
		case err != nil:
			writeErr(w, errf(http.StatusForbidden, "bad_signature", "sig", "the download link's signature is wrong"))
		default:
			signed(w, r)
		}
	}
}
