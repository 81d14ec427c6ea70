package diallertest

import (
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/dialler"
)

// TestSinkFindsViolations: a second Result, a Progress after the Result
// and reports without an attempt id are violations; one Result is not.
func TestSinkFindsViolations(t *testing.T) {
	s := NewSink()
	s.Progress(dialler.Progress{AttemptID: "at_1", State: dialler.StateDialing})
	s.Result(dialler.Result{AttemptID: "at_1"})
	if err := s.Err(); err != nil {
		t.Fatalf("one progress, one result: %v", err)
	}
	s.Result(dialler.Result{AttemptID: "at_1"})
	s.Progress(dialler.Progress{AttemptID: "at_1", State: dialler.StateSending})
	s.Result(dialler.Result{})
	err := s.Err()
	for _, want := range []string{"result 2", "progress \"sending\" after its result", "result without an attempt id"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Err() = %v, want it to mention %q", err, want)
		}
	}
	if n := len(s.Results("at_1")); n != 2 {
		t.Errorf("%d results recorded for at_1, want 2", n)
	}
}

// TestSinkWaitResults returns once every attempt has a Result, and names
// the ones without when the time is up.
func TestSinkWaitResults(t *testing.T) {
	s := NewSink()
	go func() {
		time.Sleep(20 * time.Millisecond)
		s.Result(dialler.Result{AttemptID: "at_1"})
	}()
	if err := s.WaitResults(5*time.Second, "at_1"); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitResults(50*time.Millisecond, "at_1", "at_2"); err == nil || !strings.Contains(err.Error(), "at_2") || strings.Contains(err.Error(), "at_1") {
		t.Fatalf("WaitResults with at_2 missing: %v", err)
	}
}
