package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/faxbox/faxbox/firmware/selftest"
)

// SelfTester runs the box's self-test and trunk qualifications (package
// box; the errors are package selftest's).
type SelfTester interface {
	// StartSelfTest starts the loopback self-test; selftest.ErrRunning
	// while one runs.
	StartSelfTest() (*selftest.Run, error)
	// SelfTest is the latest self-test, nil before the first.
	SelfTest() *selftest.Run
	// StartQualify sends a test fax through trunk to number ("": the
	// configured qualify number) and scores the path.
	StartQualify(trunk, number string) (*selftest.Run, error)
	// Qualification is trunk's latest, nil before the first.
	Qualification(trunk string) *selftest.Run
}

// runErr answers the errors of starting a run.
func runErr(err error) *Error {
	switch {
	case errors.Is(err, selftest.ErrRunning):
		return errf(http.StatusConflict, "run_in_progress", "", "a run of this kind has not ended yet: GET it to follow it")
	case errors.Is(err, selftest.ErrNoTrunk):
		return errf(http.StatusNotFound, "not_found", "", "no SIP trunk of that name (asterisk.trunk.name)")
	case errors.Is(err, selftest.ErrNoNumber):
		return errf(http.StatusUnprocessableEntity, "missing_field", "number", "no number to send the test fax to: give number, or configure qualify.number")
	case errors.Is(err, selftest.ErrBadNumber):
		return errf(http.StatusBadRequest, "invalid_number", "number", "number must be 3 to 20 digits, optionally a leading +")
	case errors.Is(err, selftest.ErrNoLine):
		return errf(http.StatusUnprocessableEntity, "no_line", "", err.Error())
	}
	return nil
}

func (s *Server) selfTester(w http.ResponseWriter) bool {
	if s.SelfTests == nil {
		writeErr(w, errf(http.StatusNotFound, "not_found", "", "this box runs no self-test"))
		return false
	}
	return true
}

// startSelfTest is POST /v1/selftest: 202 with the run, Location
// /v1/selftest.
func (s *Server) startSelfTest(w http.ResponseWriter, r *http.Request) {
	if !s.selfTester(w) {
		return
	}
	run, err := s.SelfTests.StartSelfTest()
	if err != nil {
		s.writeRunErr(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/selftest")
	writeJSON(w, http.StatusAccepted, run)
}

// getSelfTest is GET /v1/selftest: the latest run.
func (s *Server) getSelfTest(w http.ResponseWriter, r *http.Request) {
	if !s.selfTester(w) {
		return
	}
	run := s.SelfTests.SelfTest()
	if run == nil {
		writeErr(w, errf(http.StatusNotFound, "not_found", "", "no self-test has run yet: POST /v1/selftest"))
		return
	}
	writeJSON(w, http.StatusOK, run)
}

// startQualify is POST /v1/trunks/{name}/qualify, optionally with JSON
// {"number": "100"}: 202 with the run.
func (s *Server) startQualify(w http.ResponseWriter, r *http.Request) {
	if !s.selfTester(w) {
		return
	}
	var req struct {
		Number string `json:"number"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4096))
	if err == nil && len(strings.TrimSpace(string(body))) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		err = dec.Decode(&req)
	}
	if err != nil {
		writeErr(w, errf(http.StatusBadRequest, "invalid_body", "", "want JSON {\"number\": \"…\"} or no body: "+err.Error()))
		return
	}
	name := r.PathValue("name")
	run, err := s.SelfTests.StartQualify(name, req.Number)
	if err != nil {
		s.writeRunErr(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/trunks/"+name+"/qualify")
	writeJSON(w, http.StatusAccepted, run)
}

// getQualify is GET /v1/trunks/{name}/qualify: the trunk's latest
// qualification.
func (s *Server) getQualify(w http.ResponseWriter, r *http.Request) {
	if !s.selfTester(w) {
		return
	}
	run := s.SelfTests.Qualification(r.PathValue("name"))
	if run == nil {
		writeErr(w, errf(http.StatusNotFound, "not_found", "", "this trunk has not been qualified yet: POST /v1/trunks/{name}/qualify"))
		return
	}
	writeJSON(w, http.StatusOK, run)
}

func (s *Server) writeRunErr(w http.ResponseWriter, r *http.Request, err error) {
	if e := runErr(err); e != nil {
		writeErr(w, e)
		return
	}
	s.Log.Error("api: starting a run", "component", "api", "path", r.URL.Path, "err", err)
	writeErr(w, errf(http.StatusInternalServerError, "internal", "", "the run could not be started: "+err.Error()))
}
