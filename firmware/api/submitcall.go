package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/store"
)

// SubmitCall places a call job from inside the box (the calendar's
// reminder calls) through the path POST /v1/calls takes: req is checked
// exactly as a JSON request is (numbers and calls.deny_prefixes, say text
// without control characters, client_ref, a line that can dial the number,
// free disk), then stored and handed to the engine. A recording (Play) is
// refused: only an upload may name one. When req.ClientRef is stored
// already, nothing is submitted: the stored job comes back with dup true,
// whatever its content. A refused request's error is an *Error (its Code
// and Field say why).
func (s *Server) SubmitCall(req CallRequest) (j *job.Job, dup bool, err error) {
	if req.Play != "" {
		return nil, false, errf(http.StatusBadRequest, "invalid_field", "play", "play is a recording uploaded to POST /v1/calls")
	}
	if e := s.diskCheck(); e != nil {
		return nil, false, e
	}
	now := s.now()
	j, e := s.callJob(req, now)
	if e != nil {
		return nil, false, e
	}
	content, err := json.Marshal(req)
	if err != nil {
		return nil, false, fmt.Errorf("api: submit call: %w", err)
	}
	rec := &store.Record{Job: j, Hash: contentHash(map[string]string{"call": string(content)}, nil)}
	got, err := s.Store.Create(rec)
	if errors.Is(err, store.ErrRefExists) {
		if cur, gerr := s.Engine.Get(got.Job.ID); gerr == nil {
			return cur, true, nil
		}
		return got.Job, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("api: submit call to %s: %w", j.To, err)
	}
	snap := s.Engine.Submit(got)
	return snap, false, nil
}

// now is s.Now, or the wall clock before Handler has set it.
func (s *Server) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}
