package api

import (
	"net/http"

	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/xmpp/addr"
)

// xmppField reads notify_xmpp (POST /v1/faxes, POST /v1/calls) into j: one
// bare JID (name@domain, no resource, no control or markup characters),
// kept in its canonical form; refused with 422 xmpp_unavailable when the
// box has no XMPP account to send the outcome from.
func (s *Server) xmppField(v string, j *job.Job) *Error {
	if v == "" {
		return nil
	}
	jid, err := addr.Check(v)
	if err != nil {
		return errf(http.StatusBadRequest, "invalid_field", "notify_xmpp", "notify_xmpp must be one bare XMPP address (name@example.org): "+err.Error())
	}
	if !s.Cfg.XMPP.Enabled() {
		return errf(http.StatusUnprocessableEntity, "xmpp_unavailable", "notify_xmpp", "the box has no XMPP account configured (xmpp.jid); it cannot send the outcome")
	}
	j.NotifyXMPP = jid.String()
	return nil
}
