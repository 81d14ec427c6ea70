package engine

import (
	"sync"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/destctl"
	"github.com/faxbox/faxbox/firmware/job"
)

// fakeAdvisor advises ECM on and 9600 for every number, and records which
// settings the engine said the destination's rule fixes.
type fakeAdvisor struct {
	mu    sync.Mutex
	fixed map[string][2]bool
}

func (f *fakeAdvisor) AvoidT38(string, time.Time) (bool, string)     { return false, "" }
func (f *fakeAdvisor) Observe(string, *job.Attempt, bool, time.Time) {}
func (f *fakeAdvisor) AdvisePath(n string, _ time.Time, fe, fr bool) (bool, int, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fixed[n] = [2]bool{fe, fr}
	ecm, rate, why := true, 9600, "ECM on, 9600 because of 3% unrecoverable loss"
	if fe {
		ecm, why = false, "9600 because of 3% unrecoverable loss"
	}
	if fr {
		rate, why = 0, "ECM on because of 3% unrecoverable loss"
	}
	return ecm, rate, why
}

// TestPathAdvice: the engine applies a lossy path's advice to the attempt
// (rate, decision) and to the dial request, and tells the advisor which
// settings the destination's rule fixes; the rule's rate wins.
func TestPathAdvice(t *testing.T) {
	cases := []struct {
		name     string
		rule     destctl.Rule
		rate     int
		decision string
		fixed    [2]bool
	}{
		{"learned", destctl.Rule{Prefix: "77"}, 9600, "ECM on, 9600 because of 3% unrecoverable loss", [2]bool{false, false}},
		{"rule sets the rate", destctl.Rule{Prefix: "99990001", MaxRate: 7200}, 7200, "ECM on because of 3% unrecoverable loss", [2]bool{false, true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			adv := &fakeAdvisor{fixed: map[string][2]bool{}}
			rules := withRules(c.rule)
			h := startWith(t, t.TempDir(), 1, func(cfg *Config) { rules(cfg); cfg.Health = adv })
			h.submit(t, "p1", "99990001", 1, time.Second)
			j := h.wait(t, "p1", job.Delivered)
			a := j.Attempts[0]
			if a.MaxRate != c.rate || a.Decision != c.decision || !a.ECM {
				t.Errorf("attempt rate %d ecm %v decision %q; want %d, true, %q", a.MaxRate, a.ECM, a.Decision, c.rate, c.decision)
			}
			h.rec.mu.Lock()
			q := h.rec.last["p1"]
			h.rec.mu.Unlock()
			if q.Fax == nil || q.Fax.MaxRate != c.rate || !q.Fax.ECM {
				t.Errorf("dialled with %+v", q.Fax)
			}
			adv.mu.Lock()
			defer adv.mu.Unlock()
			if got := adv.fixed["99990001"]; got != c.fixed {
				t.Errorf("fixed (ecm, rate) %v, want %v", got, c.fixed)
			}
		})
	}
}
