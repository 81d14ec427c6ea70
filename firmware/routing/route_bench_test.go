//go:build lab

package routing_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/ami"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/mail"
	"github.com/faxbox/faxbox/firmware/routing"
	"github.com/faxbox/faxbox/internal/testkit"
	"github.com/faxbox/faxbox/tools/lab"
)

// benchFaxes is how many 3-page faxes BenchmarkLabReceivedHandoff
// receives, benchPar how many calls are up at once.
const (
	benchFaxes = 12
	benchPar   = 2
)

// BenchmarkLabReceivedHandoff: the lab's remote sends 3-page T.38 faxes to
// a number whose rule sends each to a webhook and by e-mail (a real
// postfix). For each fax it measures, from the end of the call (the
// remote's send returns), the time until the signed fax.received webhook
// arrived at the receiver and until postfix accepted the mail (the mail
// outbox's record of it sent), and reports p50 and p99 of each (target:
// p99 < 2 s). The call's end is the first sign of it on the box's Asterisk
// (HangupRequest, SoftHangupRequest, Hangup, or the FaxboxReceived event its
// hangup handler sends), seen on a manager connection of the benchmark's
// own.
func BenchmarkLabReceivedHandoff(b *testing.B) {
	e := startRouteEnv(b, "routebench", 46060, func(hook, folder string) []config.Route {
		return []config.Route{{Name: "desk", Match: config.RouteMatch{DID: "520"}, Webhook: hook + "/desk", Email: []string{office}}}
	})
	ends := watchCallEnds(b, e)
	run := time.Now().Unix() % 10000 // caller ids of this run (a lab reused within a minute may hand over a fax of the last)
	for range b.N {
		var mu sync.Mutex
		var hookLat, mailLat []time.Duration
		sem := make(chan struct{}, benchPar)
		var wg sync.WaitGroup
		b.ResetTimer()
		for i := range benchFaxes {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				h, m := e.handoff(b, ends, "520", fmt.Sprintf("09%04d%04d", run, i))
				mu.Lock()
				hookLat, mailLat = append(hookLat, h), append(mailLat, m)
				mu.Unlock()
			}()
		}
		wg.Wait()
		b.StopTimer()
		slices.Sort(hookLat)
		slices.Sort(mailLat)
		report := func(what string, d []time.Duration) {
			p50, p99 := testkit.Percentile(d, 50), testkit.Percentile(d, 99)
			b.ReportMetric(p50.Seconds(), what+"-p50-s")
			b.ReportMetric(p99.Seconds(), what+"-p99-s")
			fmt.Printf("received 3-page fax → %s handed off, after the call ended (%d faxes, %d calls at once): p50 %s, p99 %s, max %s\n",
				what, len(d), benchPar, p50.Round(time.Millisecond), p99.Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond))
			if p99 >= 2*time.Second {
				b.Errorf("%s p99 %s, target < 2 s", what, p99)
			}
		}
		report("webhook", hookLat)
		report("email", mailLat)
	}
}

// handoff sends one 3-page fax to did from caller and returns how long
// after the call ended its webhook arrived and its mail was accepted by
// the relay.
func (e *routeEnv) handoff(b *testing.B, ends *callEnds, did, caller string) (time.Duration, time.Duration) {
	e.sendFrom(b, did, caller)
	f := e.waitCaller(b, caller, time.Minute)
	ended := ends.of(b, caller)
	if f.Pages != 3 {
		b.Errorf("fax from %s: %d pages", caller, f.Pages)
	}
	_, h := e.routedHook(b, "/desk", f.ID, time.Minute)
	var sent time.Time
	for deadline := time.Now().Add(time.Minute); ; {
		r, err := e.b.Mail.Get(routing.MailID(f.ID))
		if err == nil && r.State == mail.Sent && r.DoneAt != nil {
			sent = *r.DoneAt
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the mail of %s was not accepted: %+v %v", f.ID, r, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if h.At.Before(ended) || sent.Before(ended) {
		b.Errorf("fax from %s handed off before its call ended: webhook %s, mail %s after", caller, h.At.Sub(ended), sent.Sub(ended))
	}
	return h.At.Sub(ended), sent.Sub(ended)
}

// callEnds keeps, by caller id, when the box's Asterisk first showed the
// end of a call.
type callEnds struct {
	mu  sync.Mutex
	end map[string]time.Time
}

func watchCallEnds(b *testing.B, e *routeEnv) *callEnds {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	c, err := ami.Dial(ctx, ami.Config{Addr: e.l.Box.AMIAddr(), Username: lab.BoxAMIUser, Secret: lab.BoxAMISecret})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	w := &callEnds{end: map[string]time.Time{}}
	go func() {
		for m := range c.Events() {
			at := time.Now()
			caller := ""
			switch m.Event() {
			case "HangupRequest", "SoftHangupRequest", "Hangup":
				caller = m.Get("CallerIDNum")
			case "UserEvent":
				if m.Get("UserEvent") == "FaxboxReceived" {
					caller = m.Get("CallerID")
				}
			}
			w.mu.Lock()
			if _, seen := w.end[caller]; caller != "" && !seen {
				w.end[caller] = at
			}
			w.mu.Unlock()
		}
	}()
	return w
}

// of returns when the call from caller ended (it has: its fax is recorded).
func (w *callEnds) of(b *testing.B, caller string) time.Time {
	for deadline := time.Now().Add(10 * time.Second); ; {
		w.mu.Lock()
		t, ok := w.end[caller]
		w.mu.Unlock()
		if ok {
			return t
		}
		if time.Now().After(deadline) {
			b.Fatalf("the box's Asterisk showed no end of the call from %s", caller)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
