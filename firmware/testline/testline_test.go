package testline_test

import (
	"context"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/clock"
	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/dialler/diallertest"
	"github.com/faxbox/faxbox/firmware/testline"
)

// stallSink records like diallertest.Sink but holds the first "answered"
// Progress until released, so a Hangup can land while the line is between
// reporting the answer and reporting the first page.
type stallSink struct {
	*diallertest.Sink
	answered chan struct{}
	release  chan struct{}
}

func (s stallSink) Progress(p dialler.Progress) {
	if p.State == dialler.StateAnswered {
		close(s.answered)
		<-s.release
	}
	s.Sink.Progress(p)
}

// TestNoProgressAfterHangupResult: a call hung up while its timer callback
// is reporting the answer gets its Result, and then no Progress (the
// contract allows Progress only before the Result).
func TestNoProgressAfterHangupResult(t *testing.T) {
	s := stallSink{Sink: diallertest.NewSink(), answered: make(chan struct{}), release: make(chan struct{})}
	l := testline.New("9999000", 10*time.Millisecond, clock.Real{}, s)
	r := dialler.Request{AttemptID: "at_stall", JobID: "fx_stall", To: "99990001", Fax: &dialler.FaxSpec{FirstPage: 1, Pages: 50, TotalPages: 50}}
	if err := l.Dial(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	<-s.answered
	hung := make(chan error, 1)
	go func() { hung <- l.Hangup(context.Background(), r.AttemptID) }()
	s.WaitResults(200*time.Millisecond, r.AttemptID) // the Result, if Hangup does not wait for the answer's report
	close(s.release)
	if err := <-hung; err != nil {
		t.Fatalf("Hangup: %v", err)
	}
	if err := s.WaitResults(5*time.Second, r.AttemptID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if rs := s.Results(r.AttemptID); len(rs) != 1 || rs[0].Code == "" {
		t.Fatalf("results %+v, want one, not delivered", rs)
	}
}
