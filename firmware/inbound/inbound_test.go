package inbound

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/clock"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/job"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// queue records the jobs the service submits and its log; err, when set,
// refuses the jobs.
type queue struct {
	mu   sync.Mutex
	jobs []*job.Job
	err  error
	log  bytes.Buffer
}

// logged counts the log lines that contain s.
func (q *queue) logged(s string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return strings.Count(q.log.String(), s)
}

func (q *queue) Write(p []byte) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.log.Write(p)
}

func (q *queue) submit(j *job.Job) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return q.err
	}
	q.jobs = append(q.jobs, j)
	return nil
}

// to lists the callees of the submitted jobs, in order.
func (q *queue) to() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var s []string
	for _, j := range q.jobs {
		s = append(s, j.To)
	}
	return strings.Join(s, " ")
}

func newService(cb config.Callback) (*Service, *clock.Fake, *queue) {
	clk := clock.NewFake(t0)
	q := &queue{}
	return New(Config{Callback: cb, Clock: clk, Submit: q.submit, Log: slog.New(slog.NewTextHandler(q, nil))}), clk, q
}

// TestCallbackOnlyForAllowedCallers: a call without caller id or from a
// caller not on the allow list is not called back.
func TestCallbackOnlyForAllowedCallers(t *testing.T) {
	s, _, q := newService(config.Callback{Number: "5000", AllowCallers: []string{"300", "301"}, PerHour: 3})
	for _, caller := range []string{"", "302", "30", "3000", "300 ", "anonymous"} {
		s.Handle(caller)
	}
	if got := q.to(); got != "" {
		t.Fatalf("called back %q; want nobody", got)
	}
	if n := q.logged("not on the allow list"); n != 6 {
		t.Fatalf("%d refusals logged, want 6:\n%s", n, q.log.String())
	}
	s.Handle("301")
	s.Handle("300")
	if got := q.to(); got != "301 300" {
		t.Fatalf("called back %q; want 301 300", got)
	}
	empty, _, q2 := newService(config.Callback{Number: "5000", PerHour: 3})
	empty.Handle("300")
	if got := q2.to(); got != "" {
		t.Fatalf("empty allow list: called back %q", got)
	}
}

// TestCallbackJob: the callback is a one-attempt call job of kind callback
// to the caller, due after the configured delay, with the service's
// callback URL, at the highest priority.
func TestCallbackJob(t *testing.T) {
	s, _, q := newService(config.Callback{Number: "5000", AllowCallers: []string{"300"}, Delay: config.Duration(30 * time.Second),
		PerHour: 3, CallbackURL: "http://crm.example/hook"})
	s.Handle("300")
	if len(q.jobs) != 1 {
		t.Fatalf("%d jobs, want 1", len(q.jobs))
	}
	j := q.jobs[0]
	if j.Kind != job.KindCall || j.Call == nil || j.Call.Kind != job.CallCallback || j.To != "300" || j.Status != job.Queued {
		t.Fatalf("job %+v call %+v", j, j.Call)
	}
	if j.SendAt == nil || !j.SendAt.Equal(t0.Add(30*time.Second)) || !j.CreatedAt.Equal(t0) || !j.ExpireAt.Equal(t0.Add(30*time.Second+time.Hour)) {
		t.Fatalf("times: created %v send %v expire %v", j.CreatedAt, j.SendAt, j.ExpireAt)
	}
	if j.MaxAttempts != 1 || j.Priority != 9 || j.CallbackURL != "http://crm.example/hook" || !strings.HasPrefix(j.ID, "cl_") {
		t.Fatalf("job %+v", j)
	}
	// A callback delayed by hours still has its hour to be placed in.
	late, _, lq := newService(config.Callback{Number: "5000", AllowCallers: []string{"300"}, Delay: config.Duration(2 * time.Hour), PerHour: 3})
	late.Handle("300")
	if lj := lq.jobs[0]; !lj.ExpireAt.After(*lj.SendAt) {
		t.Fatalf("a callback delayed 2 h expires at %v, before its send time %v", lj.ExpireAt, lj.SendAt)
	}
}

// TestCallbackRateLimit: at most PerHour callbacks per caller in any hour,
// counted on the injected clock; refused calls do not count; every caller
// has their own count; PerHour 0 is no limit.
func TestCallbackRateLimit(t *testing.T) {
	s, clk, q := newService(config.Callback{Number: "5000", AllowCallers: []string{"300", "301"}, PerHour: 3})
	for range 3 {
		s.Handle("300")
		clk.Advance(10 * time.Minute)
	}
	// t0+30m: three in the last hour.
	s.Handle("300")
	clk.Advance(29*time.Minute + 59*time.Second)
	s.Handle("300") // t0+59m59s: the first is still within the hour
	s.Handle("301")
	if got := q.to(); got != "300 300 300 301" {
		t.Fatalf("within the first hour: called back %q", got)
	}
	clk.Advance(time.Second)
	s.Handle("300") // t0+60m: the first has left the hour
	s.Handle("300") // the ones at +10m and +20m have not
	if got := q.to(); got != "300 300 300 301 300" {
		t.Fatalf("after the first left the hour: called back %q", got)
	}
	clk.Advance(20 * time.Minute) // t0+80m: +10m and +20m have left the hour
	s.Handle("300")
	s.Handle("300")
	s.Handle("300")
	if got := q.to(); got != "300 300 300 301 300 300 300" {
		t.Fatalf("at t0+80m: called back %q", got)
	}
	if n := q.logged("rate limit reached"); n != 4 {
		t.Fatalf("%d rate limit refusals logged, want 4:\n%s", n, q.log.String())
	}

	unlimited, _, q2 := newService(config.Callback{Number: "5000", AllowCallers: []string{"300"}})
	for range 10 {
		unlimited.Handle("300")
	}
	if n := len(q2.jobs); n != 10 {
		t.Fatalf("per_hour 0: %d callbacks, want 10", n)
	}
}

// TestCallbackNotStored: a job the store refuses is not called back, and
// the attempt counts against the caller's limit (a failing store is not
// hammered).
func TestCallbackNotStored(t *testing.T) {
	s, _, q := newService(config.Callback{Number: "5000", AllowCallers: []string{"300"}, PerHour: 1})
	q.err = errors.New("store: disk full")
	s.Handle("300")
	q.err = nil
	s.Handle("300")
	if got := q.to(); got != "" {
		t.Fatalf("called back %q; want nobody", got)
	}
	if q.logged("could not store the job") != 1 || q.logged("rate limit reached") != 1 {
		t.Fatalf("log:\n%s", q.log.String())
	}
}

// TestAllowDest: a destination is connected only when it is a number, on no
// deny prefix and on an allowed prefix.
func TestAllowDest(t *testing.T) {
	allow := AllowDest(config.Calls{DenyPrefixes: []string{"00", "0900"},
		Callback: config.Callback{AllowPrefixes: []string{"0", "2"}}})
	for d, want := range map[string]bool{
		"030123456":  true,
		"2001":       true,
		"0044201":    false, // denied: international
		"0900123456": false, // denied: premium
		"1001":       false, // not an allowed prefix
		"":           false,
		"02a1":       false,
		"0*1":        false,
	} {
		if got := allow(d); got != want {
			t.Errorf("AllowDest(%q) = %v, want %v", d, got, want)
		}
	}
	none := AllowDest(config.Calls{})
	if none("030123456") {
		t.Error("no allow prefixes: a destination was allowed")
	}
}
