package box

import (
	"strings"
	"sync"
	"time"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/rules"
	"github.com/faxbox/faxbox/firmware/store"
)

// Why AMI and not FastAGI: faxbox already holds one least-privilege AMI
// connection with ordered writes and reconnects; the callback's dialplan only
// Reads digits and publishes them (FILTERed) in UserEvents, and faxbox moves
// the channel on with Redirect/Setvar. No second listening port, no AGI
// process that could be reached by a crafted dialplan, and the decision (PIN,
// destination patterns, deny list) stays in Go where it is tested.
//
// inbound is the inbound callback service: a caller rings the callback
// number, the box rejects the call and, if the caller id is allowed and
// under its rate limit, calls back (a call job of kind "callback", recorded
// and reported like every job). The PIN and the destination are checked by
// the Asterisk dialler when the caller keys them in.
type inbound struct {
	b   *Box
	cfg config.Callback
	mu  sync.Mutex
	hit map[string][]time.Time
}

// handle is called for every call to the callback number.
func (in *inbound) handle(caller string) {
	log := in.b.Log.With("caller", caller)
	allowed := false
	for _, a := range in.cfg.AllowCallers {
		allowed = allowed || a == caller
	}
	if caller == "" || !allowed {
		log.Warn("callback: caller id not on the allow list; not calling back")
		return
	}
	now := in.b.Clock.Now()
	in.mu.Lock()
	var recent []time.Time
	for _, t := range in.hit[caller] {
		if now.Sub(t) < time.Hour {
			recent = append(recent, t)
		}
	}
	if in.cfg.PerHour > 0 && len(recent) >= in.cfg.PerHour {
		in.hit[caller] = recent
		in.mu.Unlock()
		log.Warn("callback: rate limit reached", "per_hour", in.cfg.PerHour)
		return
	}
	in.hit[caller] = append(recent, now)
	in.mu.Unlock()
	at := now.Add(in.cfg.Delay.D())
	j := &job.Job{ID: job.NewCallID(), Kind: job.KindCall, To: caller, Status: job.Queued, CreatedAt: now, UpdatedAt: now,
		MaxAttempts: 1, RetryInterval: job.Duration(time.Minute), ExpireAt: now.Add(time.Hour), SendAt: &at, Priority: 9,
		CallbackURL: in.cfg.CallbackURL, Call: &job.CallSpec{Kind: "callback"}}
	rec, err := in.b.Store.Create(&store.Record{Job: j})
	if err != nil {
		log.Error("callback: could not store the job", "err", err)
		return
	}
	log.Info("callback: calling back", "job", j.ID, "at", at)
	in.b.Engine.Submit(rec)
}

// allowDest says whether a caller may be connected to digits.
func allowDest(c config.Config) func(string) bool {
	return func(d string) bool {
		if rules.Dialable(d, c.Calls.DenyPrefixes) != nil {
			return false
		}
		for _, p := range c.Calls.Callback.AllowPrefixes {
			if strings.HasPrefix(d, p) {
				return true
			}
		}
		return false
	}
}
