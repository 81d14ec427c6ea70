package asterisk_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/job"
)

// usage is how the lines were used, from the jobs' attempts.
type usage struct {
	// idle is the channel time a line stood free while a job that could have
	// gone on it waited: ready, and its number under its limit.
	idle time.Duration
	// overLimit counts attempts started while their number already had its
	// limit of calls up; overChannels those started with every channel busy.
	overLimit, overChannels int
}

// span is a call on a line, or a job waiting to be dialled, to num.
type span struct {
	num      string
	from, to time.Time
}

// lineUsage computes usage from the stored attempts. A call holds its line
// from its attempt's start to its end (a batch is one call). A job waits
// from the moment it was accepted to its first attempt (conversion of a
// fax-ready TIFF takes milliseconds and is counted as waiting), and from
// the end of an attempt plus its retry interval to its next attempt.
// Between any two of these moments nothing changes, so the idle time is a
// sum over those stretches of min(free channels, jobs that may be dialled),
// where a number under its limit lets as many of its waiting jobs be
// dialled as it has calls left.
func lineUsage(jobs []*job.Job, channels int, limit func(num string) int) usage {
	var calls, waits []span
	seen := map[string]bool{}
	for _, j := range jobs {
		num := strings.TrimPrefix(j.To, "+")
		ready := j.CreatedAt
		for _, a := range j.Attempts {
			if a.StartedAt.After(ready) {
				waits = append(waits, span{num, ready, a.StartedAt})
			}
			if a.EndedAt == nil {
				continue
			}
			ready = a.EndedAt.Add(time.Duration(j.RetryInterval))
			if id := cmpOr(a.Call, a.ID); !seen[id] {
				seen[id] = true
				calls = append(calls, span{num, a.StartedAt, *a.EndedAt})
			}
		}
	}
	var u usage
	slices.SortFunc(calls, func(a, b span) int { return a.from.Compare(b.from) })
	for i, c := range calls {
		same, all := 0, 0
		for _, d := range calls[:i] {
			if !d.from.After(c.from) && d.to.After(c.from) {
				all++
				if d.num == c.num {
					same++
				}
			}
		}
		if same >= limit(c.num) {
			u.overLimit++
		}
		if all >= channels {
			u.overChannels++
		}
	}
	var at []time.Time
	for _, s := range append(slices.Clone(calls), waits...) {
		at = append(at, s.from, s.to)
	}
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	at = slices.CompactFunc(at, func(a, b time.Time) bool { return a.Equal(b) })
	covers := func(s span, t time.Time) bool { return !s.from.After(t) && s.to.After(t) }
	for i := 0; i+1 < len(at); i++ {
		t0 := at[i]
		up, upTo, waiting := 0, map[string]int{}, map[string]int{}
		for _, c := range calls {
			if covers(c, t0) {
				up++
				upTo[c.num]++
			}
		}
		for _, w := range waits {
			if covers(w, t0) {
				waiting[w.num]++
			}
		}
		dialable := 0
		for num, k := range waiting {
			dialable += min(k, max(limit(num)-upTo[num], 0))
		}
		if free := channels - up; free > 0 && dialable > 0 {
			u.idle += time.Duration(min(free, dialable)) * at[i+1].Sub(t0)
		}
	}
	return u
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestLineUsage checks the measure BenchmarkThroughput reports: idle time is
// counted only while a job that could go waits, as many channels as such
// jobs could fill, and attempts over a number's limit or the channels are
// counted.
func TestLineUsage(t *testing.T) {
	t0 := time.Unix(10_000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	n := 0
	attempt := func(from, to int) job.Attempt {
		end := at(to)
		n++
		return job.Attempt{ID: fmt.Sprint("a", n), StartedAt: at(from), EndedAt: &end}
	}
	fax := func(to string, created int, retry time.Duration, as ...job.Attempt) *job.Job {
		return &job.Job{To: to, CreatedAt: at(created), RetryInterval: job.Duration(retry), Attempts: as}
	}
	limit := func(num string) int {
		if num == "107" {
			return 4
		}
		return 1
	}
	for _, c := range []struct {
		name       string
		jobs       []*job.Job
		idle       time.Duration
		over, busy int
	}{
		{"dialled at once", []*job.Job{fax("100", 0, 0, attempt(0, 20)), fax("101", 0, 0, attempt(0, 20))}, 0, 0, 0},
		// 100 takes one call: the second job to it waits, but could not go.
		{"number at its limit", []*job.Job{fax("100", 0, 0, attempt(0, 20)), fax("100", 0, 0, attempt(20, 40))}, 0, 0, 0},
		// Two jobs to 107 wait 5 s with 2 channels free: 10 channel-seconds.
		{"a line left idle", []*job.Job{fax("107", 0, 0, attempt(5, 25)), fax("107", 0, 0, attempt(5, 25))}, 10 * time.Second, 0, 0},
		// Three jobs to 107 wait with one channel free: one channel idle for
		// 4 s; then one goes, and when it ends the channel is idle again
		// for 20 s while the other two wait.
		{"as many as free channels", []*job.Job{fax("100", 0, 0, attempt(0, 30)), fax("101", 0, 0, attempt(0, 30)), fax("102", 0, 0, attempt(0, 30)),
			fax("107", 0, 0, attempt(4, 10)), fax("107", 0, 0, attempt(30, 40)), fax("107", 0, 0, attempt(30, 40))}, 24 * time.Second, 0, 0},
		// A retry waits its interval (not idle), then 3 s on a free line.
		{"retry wait", []*job.Job{fax("102", 0, 10*time.Second, attempt(0, 1), attempt(14, 15))}, 3 * time.Second, 0, 0},
		{"over a number's limit", []*job.Job{fax("100", 0, 0, attempt(0, 20)), fax("100", 0, 0, attempt(10, 30))}, 0, 1, 0},
		{"over the channels", []*job.Job{fax("107", 0, 0, attempt(0, 20)), fax("107", 0, 0, attempt(0, 20)), fax("100", 0, 0, attempt(0, 20)),
			fax("101", 0, 0, attempt(0, 20)), fax("103", 0, 0, attempt(5, 20))}, 0, 0, 1},
	} {
		u := lineUsage(c.jobs, 4, limit)
		if u.idle != c.idle || u.overLimit != c.over || u.overChannels != c.busy {
			t.Errorf("%s: idle %s, over limit %d, over channels %d; want %s, %d, %d", c.name, u.idle, u.overLimit, u.overChannels, c.idle, c.over, c.busy)
		}
	}
}
