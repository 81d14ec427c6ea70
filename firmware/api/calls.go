package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/store"
)

var (
	reExten = regexp.MustCompile(`^[0-9]{2,20}$`)
	reKey   = regexp.MustCompile(`^[0-9*#]$`)
	// rePlay is the stored name of an uploaded recording (readMultipart's
	// in-NN.wav|mp3): the only thing a message call may play.
	rePlay = regexp.MustCompile(`^in-[0-9]{2}\.(wav|mp3)$`)
)

// callForm is what a multipart POST /v1/calls takes: the JSON body's fields
// (fallback_to comma-separated) and the recording as the file part "play".
var callForm = form{file: "play", fields: map[string]bool{
	"kind": true, "agent": true, "to": true, "say": true, "repeat": true, "confirm_digit": true, "fallback_to": true,
	"client_ref": true, "callback_url": true, "max_attempts": true, "retry_interval": true, "send_at": true, "priority": true,
	"notify_xmpp": true,
}}

// CallRequest is the JSON body of POST /v1/calls.
type CallRequest struct {
	Kind  job.CallKind `json:"kind"`
	Agent string       `json:"agent"`
	To    string       `json:"to"`
	Say   string       `json:"say"`
	// Play is the stored recording, set by the multipart reader only; a
	// JSON body naming it is refused.
	Play          string   `json:"play"`
	Repeat        int      `json:"repeat"`
	ConfirmDigit  string   `json:"confirm_digit"`
	FallbackTo    []string `json:"fallback_to"`
	ClientRef     string   `json:"client_ref"`
	CallbackURL   string   `json:"callback_url"`
	MaxAttempts   int      `json:"max_attempts"`
	RetryInterval string   `json:"retry_interval"`
	SendAt        string   `json:"send_at"`
	Priority      int      `json:"priority"`
	// NotifyXMPP is a bare JID the outcome is sent to over XMPP.
	NotifyXMPP string `json:"notify_xmpp"`
}

// callJob validates a call request and builds its job.
func (s *Server) callJob(req CallRequest, now time.Time) (*job.Job, *Error) {
	bad := func(field, code, msg string) (*job.Job, *Error) {
		return nil, errf(http.StatusBadRequest, code, field, msg)
	}
	for field, v := range map[string]string{"kind": string(req.Kind), "agent": req.Agent, "to": req.To, "say": req.Say, "play": req.Play,
		"confirm_digit": req.ConfirmDigit, "client_ref": req.ClientRef, "callback_url": req.CallbackURL, "retry_interval": req.RetryInterval, "send_at": req.SendAt} {
		if controlChar(v) || !utf8.ValidString(v) {
			return bad(field, "invalid_field", field+" contains control characters (CR, LF, ...)")
		}
	}
	d := s.Cfg.Defaults
	j := &job.Job{ID: job.NewCallID(), Kind: job.KindCall, To: req.To, Status: job.Queued, CreatedAt: now, UpdatedAt: now,
		MaxAttempts: d.MaxAttempts, RetryInterval: d.RetryInterval, ExpireAt: now.Add(d.Expire.D()),
		Call: &job.CallSpec{Kind: req.Kind}}
	if e := s.dialable("to", req.To); e != nil {
		return nil, e
	}
	switch req.Kind {
	case job.CallClick2Call:
		if e := s.directoryAgent(&req); e != nil {
			return nil, e
		}
		if !reExten.MatchString(req.Agent) {
			return bad("agent", "invalid_number", "agent must be an extension or number of 2 to 20 digits")
		}
		if e := s.denied("agent", req.Agent); e != nil {
			return nil, e
		}
		j.Call.Agent = req.Agent
	case job.CallMessage:
		if e := s.messageCall(req, j); e != nil {
			return nil, e
		}
	default:
		return bad("kind", "invalid_field", "kind must be click2call or message")
	}
	if e := s.callOptions(req, j, now); e != nil {
		return nil, e
	}
	group, err := s.Engine.Route(j.To, "")
	j.Group = group
	if err != nil {
		return nil, errf(http.StatusUnprocessableEntity, "no_line_for_number", "to", "no line can dial this number: "+err.Error())
	}
	return j, nil
}

// messageCall validates a message call's fields into j.Call.
func (s *Server) messageCall(req CallRequest, j *job.Job) *Error {
	bad := func(field, code, msg string) *Error { return errf(http.StatusBadRequest, code, field, msg) }
	switch {
	case req.Play != "" && req.Say != "":
		return bad("say", "invalid_field", "give play or say, not both")
	case req.Play != "" && !rePlay.MatchString(req.Play):
		return bad("play", "invalid_field", "play must be an uploaded WAV or MP3 recording")
	case req.Play != "":
		j.Call.Play = req.Play // set by the multipart reader only
	case strings.TrimSpace(req.Say) == "" || utf8.RuneCountInString(req.Say) > 500:
		return bad("say", "invalid_field", "say (1 to 500 characters of text to speak) or a play recording is required")
	}
	j.Call.Say = req.Say
	j.Call.Repeat = max(req.Repeat, 1)
	if j.Call.Repeat > s.Cfg.Calls.MaxRepeat {
		return bad("repeat", "invalid_field", fmt.Sprintf("repeat must be 1 to %d", s.Cfg.Calls.MaxRepeat))
	}
	if req.ConfirmDigit != "" && !reKey.MatchString(req.ConfirmDigit) {
		return bad("confirm_digit", "invalid_field", "confirm_digit is one key: 0-9, * or #")
	}
	j.Call.ConfirmDigit = req.ConfirmDigit
	if len(req.FallbackTo) > 5 {
		return bad("fallback_to", "invalid_field", "at most 5 fallback numbers")
	}
	for i, n := range req.FallbackTo {
		if e := s.dialable(fmt.Sprintf("fallback_to[%d]", i), n); e != nil {
			return e
		}
	}
	j.Call.FallbackTo = req.FallbackTo
	if len(req.FallbackTo) > 0 && req.MaxAttempts == 0 {
		j.MaxAttempts = 1 + len(req.FallbackTo)
	}
	return nil
}

// callOptions validates the fields every kind of call takes into j.
func (s *Server) callOptions(req CallRequest, j *job.Job, now time.Time) *Error {
	bad := func(field, code, msg string) *Error { return errf(http.StatusBadRequest, code, field, msg) }
	if req.ClientRef != "" {
		if !reRef.MatchString(req.ClientRef) {
			return bad("client_ref", "invalid_field", "client_ref must be 1 to 128 printable ASCII characters without spaces")
		}
		j.ClientRef = req.ClientRef
	}
	if req.CallbackURL != "" {
		if e := s.checkURL("callback_url", req.CallbackURL); e != nil {
			return e
		}
		j.CallbackURL = req.CallbackURL
	}
	if e := s.xmppField(req.NotifyXMPP, j); e != nil {
		return e
	}
	if req.MaxAttempts != 0 {
		if req.MaxAttempts < 1 || req.MaxAttempts > s.Cfg.Limits.MaxAttempts {
			return bad("max_attempts", "invalid_field", fmt.Sprintf("max_attempts must be 1 to %d", s.Cfg.Limits.MaxAttempts))
		}
		j.MaxAttempts = req.MaxAttempts
	}
	if req.RetryInterval != "" {
		dur, err := parseDuration(req.RetryInterval)
		if err != nil || dur < time.Second || dur > 24*time.Hour {
			return bad("retry_interval", "invalid_field", "retry_interval must be a duration from 1s to 24h")
		}
		j.RetryInterval = job.Duration(dur)
	}
	if req.Priority < 0 || req.Priority > 9 {
		return bad("priority", "invalid_field", "priority must be 0 to 9")
	}
	j.Priority = req.Priority
	if req.SendAt != "" {
		t, e := parseWhen("send_at", req.SendAt, now, false)
		if e != nil {
			return e
		}
		j.SendAt = &t
		if t.After(now) {
			j.ExpireAt = t.Add(s.Cfg.Defaults.Expire.D())
		}
	}
	return nil
}

func (s *Server) createCall(w http.ResponseWriter, r *http.Request) {
	if e := s.diskCheck(); e != nil {
		writeErr(w, e)
		return
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
		s.createCallMultipart(w, r)
		return
	}
	body, req, e := s.readCallJSON(r)
	if e != nil {
		writeErr(w, e)
		return
	}
	j, e := s.callJob(req, s.Now())
	if e != nil {
		writeErr(w, e)
		return
	}
	s.submitCall(w, j, string(body))
}

// readCallJSON reads a JSON call request: at most 64 KB, one object, no
// unknown fields, nothing after it, no play (a recording is uploaded as
// multipart).
func (s *Server) readCallJSON(r *http.Request) ([]byte, CallRequest, *Error) {
	var req CallRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10+1))
	if err != nil {
		return nil, req, s.bodyErr(err, "")
	}
	if len(body) > 64<<10 {
		return nil, req, errf(http.StatusRequestEntityTooLarge, "too_large", "", "the request body is limited to 64 KB")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, req, errf(http.StatusBadRequest, "invalid_request", "", "the body must be a JSON call request: "+err.Error())
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, req, errf(http.StatusBadRequest, "invalid_request", "", "the body must be one JSON call request with nothing after it")
	}
	if req.Play != "" {
		return nil, req, errf(http.StatusBadRequest, "invalid_field", "play",
			"play is a recording uploaded as the file part \"play\" of a multipart/form-data request, not a JSON field")
	}
	return body, req, nil
}

// submitCall stores a call job (idempotent by client_ref) and answers. A
// job that is not stored (its client_ref's call exists, or the store
// failed) leaves no files: its documents directory (an uploaded
// recording's) is removed.
func (s *Server) submitCall(w http.ResponseWriter, j *job.Job, content string) {
	rec := &store.Record{Job: j, Hash: contentHash(map[string]string{"call": content}, nil)}
	got, err := s.Store.Create(rec)
	if err != nil {
		s.Store.RemoveDocuments(j.ID)
	}
	if errors.Is(err, store.ErrRefExists) {
		if got.Hash != rec.Hash {
			writeErr(w, errf(http.StatusConflict, "client_ref_conflict", "client_ref", "client_ref "+strconv.Quote(j.ClientRef)+" was used for a call with other content ("+got.Job.ID+")"))
			return
		}
		cur, gerr := s.Engine.Get(got.Job.ID)
		if gerr != nil {
			cur = got.Job
		}
		w.Header().Set("Location", "/v1/calls/"+cur.ID)
		writeJSON(w, http.StatusOK, cur)
		return
	}
	if err != nil {
		writeErr(w, s.storeErr(err))
		return
	}
	snap := s.Engine.Submit(got)
	w.Header().Set("Location", "/v1/calls/"+j.ID)
	writeJSON(w, http.StatusAccepted, snap)
}

func (s *Server) getCall(w http.ResponseWriter, r *http.Request) {
	if j, ok := s.job(w, r, job.KindCall); ok {
		writeJSON(w, http.StatusOK, j)
	}
}

func (s *Server) cancelCall(w http.ResponseWriter, r *http.Request) { s.cancel(w, r, job.KindCall) }

func (s *Server) listCalls(w http.ResponseWriter, r *http.Request) {
	s.list(w, r, job.KindCall)
}

// callbackCompat is the classic click-to-call URL: GET
// /callback?num=…&cid=…&c=…&p=… rings cid (the agent) first, then num. c and
// p are accepted only as configured (compat.callback_contexts, priority 1).
// Without a token, compat.callback_auth decides which requests an allowed
// address may make (see crossSite).
func (s *Server) callbackCompat(w http.ResponseWriter, r *http.Request) {
	if e := s.callbackAllowed(r); e != nil {
		writeErr(w, e)
		return
	}
	if e := s.diskCheck(); e != nil {
		writeErr(w, e)
		return
	}
	q := r.URL.Query()
	if c := q.Get("c"); c != "" {
		ok := false
		for _, allowed := range s.Cfg.Compat.CallbackContexts {
			ok = ok || c == allowed
		}
		if !ok {
			writeErr(w, errf(http.StatusForbidden, "context_not_allowed", "c", "context "+strconv.Quote(c)+" is not in compat.callback_contexts"))
			return
		}
	}
	if p := q.Get("p"); p != "" && p != "1" {
		writeErr(w, errf(http.StatusBadRequest, "invalid_field", "p", "p (priority) must be 1"))
		return
	}
	req := CallRequest{Kind: job.CallClick2Call, Agent: q.Get("cid"), To: q.Get("num")}
	j, e := s.callJob(req, s.Now())
	if e != nil {
		if e.Field == "to" {
			e.Field = "num"
		}
		if e.Field == "agent" {
			e.Field = "cid"
		}
		writeErr(w, e)
		return
	}
	s.submitCall(w, j, r.URL.RawQuery)
}

// callbackAllowed applies compat.callback_auth to a /callback request that
// requireCompat admitted.
func (s *Server) callbackAllowed(r *http.Request) *Error {
	if s.tokenOK(r) {
		return nil
	}
	switch s.Cfg.Compat.CallbackAuth {
	case config.CallbackAddress:
		return nil
	case config.CallbackToken:
		return errf(http.StatusUnauthorized, "unauthorized", "", "/callback needs the bearer token (compat.callback_auth is token)")
	}
	if crossSite(r) {
		return errf(http.StatusForbidden, "cross_site_request", "",
			"a browser sent this /callback request for another site's page; it needs the bearer token (compat.callback_auth)")
	}
	return nil
}

// crossSite reports a request a browser sent on behalf of a page of another
// origin: Sec-Fetch-Site cross-site or same-site, or an Origin or Referer
// naming another host than the one asked. Requests of scripts and servers
// (no such headers) and pages the user opened directly (Sec-Fetch-Site none)
// are not.
func crossSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return true
	case "same-origin", "none":
		return false
	}
	for _, h := range []string{"Origin", "Referer"} {
		v := r.Header.Get(h)
		if v == "" {
			continue
		}
		u, err := url.Parse(v)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return true
		}
	}
	return false
}

// createCallMultipart takes a message call with an uploaded recording: form
// fields as in the JSON body (fallback_to repeated) and the file part "play"
// (WAV or MP3; converted to 8 kHz mono before the call).
func (s *Server) createCallMultipart(w http.ResponseWriter, r *http.Request) {
	sub, e := s.readMultipart(w, r, callForm)
	if e != nil {
		writeErr(w, e)
		return
	}
	fail := func(e *Error) {
		s.Store.RemoveDocuments(sub.id)
		writeErr(w, e)
	}
	f := sub.fields
	req := CallRequest{Kind: job.CallKind(f["kind"]), Agent: f["agent"], To: f["to"], ConfirmDigit: f["confirm_digit"], ClientRef: f["client_ref"],
		CallbackURL: f["callback_url"], RetryInterval: f["retry_interval"], SendAt: f["send_at"], Say: f["say"]}
	req.NotifyXMPP = f["notify_xmpp"]
	for k, dst := range map[string]*int{"repeat": &req.Repeat, "max_attempts": &req.MaxAttempts, "priority": &req.Priority} {
		if v := f[k]; v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				fail(errf(http.StatusBadRequest, "invalid_field", k, k+" must be a number"))
				return
			}
			*dst = n
		}
	}
	if v := f["fallback_to"]; v != "" {
		req.FallbackTo = strings.Split(v, ",")
	}
	if len(sub.files) != 1 {
		fail(errf(http.StatusBadRequest, "invalid_request", "play", "exactly one play recording"))
		return
	}
	req.Play = sub.paths[0]
	j, e := s.callJob(req, s.Now())
	if e != nil {
		fail(e)
		return
	}
	j.ID = sub.id
	s.submitCall(w, j, contentHash(f, sub.files))
}
