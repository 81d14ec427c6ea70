package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/faxbox/faxbox/firmware/client"
	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/job"
)

// pollInterval is how often send -wait reads the job when the box has no
// event stream or the stream broke.
var pollInterval = time.Second

// pollPatience is how long send -wait keeps polling a box it cannot reach
// before it gives up (ExitUnavailable).
var pollPatience = 30 * time.Second

// tracker is what send -wait knows of the followed job and has shown of it.
type tracker struct {
	e     *env
	j     *job.Job
	line  *dialler.LineState // the line in a call for the job, while there is one
	shown string
	// unreachable is when polling first failed to reach the box (zero:
	// the last poll worked).
	unreachable time.Time
}

// follow waits for job j to end, showing its progress on stderr, and returns
// the exit status of its outcome. s (nil: poll) must have been opened before
// j was submitted; follow closes it. limit > 0 bounds the wait.
func (e *env) follow(j *job.Job, s *client.Stream, limit time.Duration) int {
	ctx := e.ctx
	if limit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	if s != nil {
		stop := context.AfterFunc(ctx, s.Close) // ends a Next blocked in a read
		defer stop()
		defer s.Close()
	}
	t := &tracker{e: e, j: j}
	t.show()
	for !t.j.Status.Terminal() {
		var err error
		if s != nil {
			if err = t.next(s); err != nil && ctx.Err() == nil {
				e.log.Warn("the event stream ended; following the fax by polling", "err", err)
				s.Close()
				s, err = nil, nil
			}
		} else {
			err = t.poll(ctx)
		}
		if ctx.Err() != nil {
			return t.stopped(limit)
		}
		if err != nil {
			t.endLine()
			return e.fail("following fax "+j.ID, err)
		}
		if !t.j.Status.Terminal() {
			t.show()
		}
	}
	return t.end()
}

// next applies the stream's next event to the tracker.
func (t *tracker) next(s *client.Stream) error {
	ev, err := s.Next()
	if err != nil {
		return err
	}
	switch ev.Type {
	case client.EventJob:
		var j job.Job
		if err := json.Unmarshal(ev.Data, &j); err != nil {
			return fmt.Errorf("cli: a job event: %w", err)
		}
		if j.ID == t.j.ID {
			t.job(&j)
		}
	case client.EventLine:
		var ls dialler.LineState
		if err := json.Unmarshal(ev.Data, &ls); err != nil {
			return fmt.Errorf("cli: a line event: %w", err)
		}
		t.lineState(ls)
	case client.EventDropped:
		return errors.New("cli: the box dropped the event stream (read too slowly)")
	}
	return nil
}

// job takes a newer state of the followed job.
func (t *tracker) job(j *job.Job) {
	t.j = j
	if !j.Status.Active() {
		t.line = nil
	}
}

// lineState takes a line's new state when it is in a call for the followed
// job. The last one stays (the page last sent) until the job leaves the
// call.
func (t *tracker) lineState(ls dialler.LineState) {
	if ls.JobID == t.j.ID {
		t.line = &ls
	}
}

// poll waits pollInterval, then reads the job and, while it is in a call, the
// lines. It tolerates an unreachable box for pollPatience; an API error ends
// the wait at once.
func (t *tracker) poll(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(pollInterval):
	}
	j, err := t.e.c.Get(ctx, t.j.ID)
	if err == nil {
		t.job(j)
		if j.Status.Active() {
			var lines []dialler.LineState
			if lines, err = t.e.c.Lines(ctx); err == nil {
				for _, ls := range lines {
					t.lineState(ls)
				}
			}
		}
	}
	var ae *client.APIError
	switch {
	case err == nil:
		t.unreachable = time.Time{}
		return nil
	case errors.As(err, &ae) || ctx.Err() != nil:
		return err
	case t.unreachable.IsZero():
		t.unreachable = time.Now()
	case time.Since(t.unreachable) > pollPatience:
		return fmt.Errorf("no answer for %s: %w", pollPatience, err)
	}
	return nil
}

// show writes the progress line when it changed: redrawn in place on a
// terminal, a line per change otherwise.
func (t *tracker) show() {
	s := t.j.ID + ": " + progressText(t.j, t.line)
	if s == t.shown {
		return
	}
	t.shown = s
	if t.e.TTY {
		fmt.Fprintf(t.e.Stderr, "\r\033[K%s", s)
		return
	}
	fmt.Fprintln(t.e.Stderr, s)
}

// endLine ends a progress line redrawn on a terminal.
func (t *tracker) endLine() {
	if t.e.TTY && t.shown != "" {
		fmt.Fprintln(t.e.Stderr)
	}
	t.shown = ""
}

// progressText describes a job that has not ended, with the line in a call
// for it (nil when none is known).
func progressText(j *job.Job, ls *dialler.LineState) string {
	attempt := fmt.Sprintf("attempt %d of %d", j.Dials-j.RetryBase+1, j.MaxAttempts)
	later := ""
	if j.SendAt != nil && j.SendAt.After(time.Now()) {
		later = ", to be sent at " + j.SendAt.Local().Format("2006-01-02 15:04:05")
	}
	switch j.Status {
	case job.Queued:
		return "queued" + later
	case job.Converting:
		return "converting the documents" + later
	case job.Ready:
		if later != "" {
			return plural(j.Pages, "page") + later
		}
		return fmt.Sprintf("%s, waiting for a free line", plural(j.Pages, "page"))
	case job.Dialing, job.Sending:
		return callText(j, ls, attempt)
	case job.RetryWait:
		s := "attempt failed"
		if a := j.LastAttempt(); a != nil && a.Error != nil {
			s += ": " + errorText(a.Error)
		}
		if j.NextAttemptAt != nil {
			s += "; next attempt at " + j.NextAttemptAt.Local().Format("15:04:05")
		}
		return fmt.Sprintf("%s (%d of %d made)", s, j.Dials-j.RetryBase, j.MaxAttempts)
	}
	return string(j.Status)
}

// callText describes a job in a call: dialling, ringing, page n/m.
func callText(j *job.Job, ls *dialler.LineState, attempt string) string {
	where := ""
	if ls != nil {
		where = " on line " + ls.ID().String()
	} else if a := j.LastAttempt(); a != nil && !a.Line.IsZero() {
		where = " on line " + a.Line.String()
	}
	switch {
	case ls != nil && ls.State == dialler.LineSending && ls.Pages > 0:
		return fmt.Sprintf("sending page %d/%d to %s%s (%s)", ls.Page, ls.Pages, j.To, where, attempt)
	case ls != nil && (ls.State == dialler.LineRinging || ls.State == dialler.LineAnswered):
		return fmt.Sprintf("%s %s%s (%s)", ls.State, j.To, where, attempt)
	case j.Status == job.Sending:
		return fmt.Sprintf("sending %s to %s%s (%s)", plural(j.Pages, "page"), j.To, where, attempt)
	}
	return fmt.Sprintf("dialling %s%s (%s)", j.To, where, attempt)
}

// end reports the ended job and returns its exit status.
func (t *tracker) end() int {
	t.endLine()
	j, e := t.j, t.e
	if e.json {
		e.printJSON(j)
	}
	switch j.Status {
	case job.Delivered:
		fmt.Fprintf(e.Stderr, "%s: delivered: %s to %s after %s\n", j.ID, plural(j.Pages, "page"), j.To, plural(j.Dials, "call"))
		return ExitOK
	case job.Cancelled:
		fmt.Fprintf(e.Stderr, "%s: cancelled (%s sent of %d)\n", j.ID, plural(j.PagesConfirmed, "page"), j.Pages)
		return ExitCancelled
	}
	cause := "no cause recorded"
	if j.Error != nil {
		cause = errorText(j.Error)
	}
	fmt.Fprintf(e.Stderr, "%s: failed after %s: %s\n", j.ID, plural(j.Dials, "call"), cause)
	return ExitFailed
}

// stopped reports that the wait stopped before the job ended.
func (t *tracker) stopped(limit time.Duration) int {
	t.endLine()
	why := "interrupted"
	if t.e.ctx.Err() == nil {
		why = "no end after " + limit.String()
	}
	fmt.Fprintf(t.e.Stderr, "faxbox send: %s: stopped waiting; fax %s goes on (%s; `faxbox show %s` follows it up, `faxbox cancel %s` stops it)\n",
		why, t.j.ID, t.j.Status, t.j.ID, t.j.ID)
	return ExitTempFail
}

// errorText is a job error in plain words with its code and the line's own
// text: "line.busy: the line was busy [raw: …]".
func errorText(e *job.Error) string {
	s := string(e.Code) + ": " + e.Message
	if raw := strings.TrimSpace(e.Raw); raw != "" {
		s += " [" + raw + "]"
	}
	return s
}

// plural writes "1 page", "2 pages".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
