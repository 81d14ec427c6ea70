// Package testline is the simulated line: numbers starting with the test
// prefix never dial; each ends the way its last digit says, so integrators can
// exercise their callback handling (as with cloud fax APIs).
//
//	<prefix>1  delivered
//	<prefix>2  busy, every time
//	<prefix>3  no answer
//	<prefix>4  answered by a voice, not a fax (fax.remote_not_fax)
//	<prefix>5  breaks after page 1 on the attempt that starts at page 1,
//	           delivers the rest on the next attempt
//	<prefix>6  invalid number (not retryable)
//
// Any other number with the prefix is reported as an invalid number.
package testline

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/faxbox/faxbox/firmware/clock"
	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/failure"
)

// Line simulates calls. It implements dialler.Dialler.
type Line struct {
	Prefix   string
	PageTime time.Duration
	Clock    clock.Clock
	Sink     dialler.Sink

	mu    sync.Mutex
	calls map[string]*call
}

type call struct {
	r       dialler.Request
	timer   clock.Timer
	page    int
	started time.Time
	answer  time.Time
	done    bool
	// report orders the call's reports: a Progress is made under it only
	// while the call is not done, the Result under it once done is set.
	report sync.Mutex
}

// New returns a test line reporting to sink.
func New(prefix string, pageTime time.Duration, c clock.Clock, sink dialler.Sink) *Line {
	return &Line{Prefix: prefix, PageTime: pageTime, Clock: c, Sink: sink, calls: map[string]*call{}}
}

func (l *Line) step() time.Duration {
	d := l.PageTime / 3
	if d <= 0 {
		d = time.Millisecond
	}
	return d
}

// Dial starts a simulated call. It refuses a request that is not exactly a
// fax or a call (dialler.Request.Check).
func (l *Line) Dial(_ context.Context, r dialler.Request) error {
	if err := r.Check(); err != nil {
		return fmt.Errorf("testline: %w", err)
	}
	if r.Fax == nil {
		r.Fax = &dialler.FaxSpec{} // a call on the test line: answered, nothing to send
	}
	num := strings.TrimPrefix(r.To, "+")
	if !strings.HasPrefix(num, l.Prefix) {
		return fmt.Errorf("testline: %s is not a test number (prefix %s)", r.To, l.Prefix)
	}
	c := &call{r: r, started: l.Clock.Now()}
	l.mu.Lock()
	if _, dup := l.calls[r.AttemptID]; dup {
		l.mu.Unlock()
		return fmt.Errorf("testline: attempt %s already dialled", r.AttemptID)
	}
	l.calls[r.AttemptID] = c
	l.mu.Unlock()
	l.progress(c, dialler.Progress{State: dialler.StateDialing, At: c.started})
	l.after(c, l.step(), func() { l.answer(c) })
	return nil
}

// progress reports p for c unless c has ended.
func (l *Line) progress(c *call, p dialler.Progress) {
	c.report.Lock()
	defer c.report.Unlock()
	l.mu.Lock()
	done := c.done
	l.mu.Unlock()
	if done {
		return
	}
	p.AttemptID, p.Transport = c.r.AttemptID, "test"
	l.Sink.Progress(p)
}

func (l *Line) after(c *call, d time.Duration, f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.done {
		return
	}
	c.timer = l.Clock.AfterFunc(d, f)
}

func (l *Line) outcome(c *call) string {
	return strings.TrimPrefix(strings.TrimPrefix(c.r.To, "+"), l.Prefix)
}

func (l *Line) answer(c *call) {
	switch l.outcome(c) {
	case "1", "5":
	case "2":
		l.finish(c, dialler.Result{Code: failure.LineBusy, Raw: "BUSY (test line)"})
		return
	case "3":
		l.finish(c, dialler.Result{Code: failure.LineNoAnswer, Raw: "NOANSWER (test line)"})
		return
	case "4":
		l.answered(c)
		l.finish(c, dialler.Result{Code: failure.FaxRemoteNotFax, Answered: true, Raw: "The call dropped prematurely (test line: voice answered)"})
		return
	default:
		l.finish(c, dialler.Result{Code: failure.LineInvalidNumber, Raw: "unallocated number (test line)"})
		return
	}
	l.progress(c, dialler.Progress{State: dialler.StateAnswered, At: l.answered(c)})
	l.sendPage(c)
}

// answered records when c was answered and returns it.
func (l *Line) answered(c *call) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	c.answer = l.Clock.Now()
	return c.answer
}

func (l *Line) sendPage(c *call) {
	l.mu.Lock()
	c.page++
	page := c.page
	l.mu.Unlock()
	l.progress(c, dialler.Progress{State: dialler.StateSending, Page: page, Pages: c.r.Fax.Pages, At: l.Clock.Now()})
	l.after(c, l.PageTime, func() { l.pageDone(c, page) })
}

func (l *Line) pageDone(c *call, page int) {
	if l.outcome(c) == "5" && c.r.Fax.FirstPage == 1 && page == 1 && c.r.Fax.Pages > 1 {
		l.finish(c, dialler.Result{Code: failure.FaxRemoteHangup, Answered: true, ReachedFax: true, PagesSent: 1,
			Raw: "Disconnected after permission to transmit (test line: hung up after page 1)"})
		return
	}
	if page < c.r.Fax.Pages {
		l.sendPage(c)
		return
	}
	l.finish(c, dialler.Result{Answered: true, ReachedFax: true, PagesSent: c.r.Fax.Pages, BitRate: 14400, ECM: c.r.Fax.ECM,
		RemoteStationID: "FAXBOX TEST", Raw: "OK"})
}

// finish reports the result once and forgets the call.
func (l *Line) finish(c *call, r dialler.Result) {
	c.report.Lock()
	defer c.report.Unlock()
	l.mu.Lock()
	if c.done {
		l.mu.Unlock()
		return
	}
	c.done = true
	if c.timer != nil {
		c.timer.Stop()
	}
	delete(l.calls, c.r.AttemptID)
	r.AnsweredAt = c.answer
	l.mu.Unlock()
	r.AttemptID = c.r.AttemptID
	r.Transport = "test"
	r.Channel = "Test/" + c.r.To
	r.EndedAt = l.Clock.Now()
	l.Sink.Result(r)
}

// Hangup ends a simulated call; the pages already sent count.
func (l *Line) Hangup(_ context.Context, id string) error {
	l.mu.Lock()
	c, ok := l.calls[id]
	l.mu.Unlock()
	if !ok {
		return dialler.ErrUnknownAttempt
	}
	l.mu.Lock()
	sent := max(c.page-1, 0)
	answered := !c.answer.IsZero()
	l.mu.Unlock()
	l.finish(c, dialler.Result{Code: failure.LineDropped, Answered: answered, ReachedFax: answered, PagesSent: sent, Raw: "hung up by faxbox"})
	return nil
}

// Reconcile: a simulated call does not survive a restart of faxbox.
func (l *Line) Reconcile(_ context.Context, attempts []dialler.Request) (map[string]bool, error) {
	alive := map[string]bool{}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range attempts {
		if _, ok := l.calls[r.AttemptID]; ok {
			alive[r.AttemptID] = true
		}
	}
	return alive, nil
}
