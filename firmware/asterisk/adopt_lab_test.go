//go:build lab

package asterisk_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/ami"
	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/internal/testkit"
	"github.com/faxbox/faxbox/tools/lab"
)

// TestAdoptedAttempts: faxbox restarts while its attempts are up. The new
// process's dialler adopts them through Reconcile, given the attempts as
// they were dialled, and finishes each as what it is: a call job as a call
// (not as a fax), and a fax whose result is lost with the manager connection
// by its job's result kept in AstDB (not line.interrupted, which would send
// a delivered fax again).
func TestAdoptedAttempts(t *testing.T) {
	testkit.Require(t, "sox")
	_, cfg, tif := directLab(t, "adopt", 33060)
	a := cfg.Asterisk
	ctx := context.Background()

	// The first faxbox: dials, then "dies" (its dialler is never asked again).
	first, err := ami.Dial(ctx, ami.Config{Addr: a.AMIAddr, Username: a.AMIUser, Secret: a.AMISecret})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	firstSink := progressSink{res: make(chan dialler.Result, 4), prog: make(chan dialler.Progress, 64)}
	d1 := directDialler(t, cfg, first, firstSink)

	sound := filepath.Join(filepath.Dir(tif), "message")
	if b, err := exec.Command("sox", "-n", "-r", "8000", "-c", "1", "-b", "16", sound+".wav", "trim", "0", "6").CombinedOutput(); err != nil {
		t.Fatalf("sox: %v\n%s", err, b)
	}
	fax := dialler.Request{AttemptID: "at_adopt_fax", JobID: "fx_adopt", To: "100", Line: job.LineAt(lab.TrunkName, 0),
		Fax: &dialler.FaxSpec{TIFF: tif, FirstPage: 1, Pages: 1, TotalPages: 1, StationID: "FAXBOX LAB", ECM: true, T38: true}}
	call := dialler.Request{AttemptID: "at_adopt_call", JobID: "cl_adopt", To: "201", Line: job.LineAt(lab.TrunkName, 0),
		Call: &dialler.CallSpec{Kind: job.CallMessage, Sound: sound, Repeat: 1, ConfirmDigit: "1"}}
	// The fax first, until it is being sent; then the call, until it is
	// answered (its digit comes two seconds in).
	waitFor := func(r dialler.Request, state dialler.State) {
		t.Helper()
		if err := d1.Dial(ctx, r); err != nil {
			t.Fatal(err)
		}
		for {
			select {
			case p := <-firstSink.prog:
				if p.AttemptID == r.AttemptID && p.State == state {
					return
				}
			case res := <-firstSink.res:
				t.Fatalf("an attempt ended before the restart: %+v", res)
			case <-time.After(time.Minute):
				t.Fatalf("%s never reached %s", r.AttemptID, state)
			}
		}
	}
	waitFor(fax, dialler.StateSending)
	waitFor(call, dialler.StateAnswered)

	// The second faxbox, on a connection that will be cut.
	proxy := newAMICut(t, a.AMIAddr)
	sink := progressSink{res: make(chan dialler.Result, 4), prog: make(chan dialler.Progress, 64)}
	resync := make(chan struct{}, 1)
	second, err := ami.Dial(ctx, ami.Config{Addr: proxy.ln.Addr().String(), Username: a.AMIUser, Secret: a.AMISecret, Keepalive: time.Second,
		OnConnect: func(ctx context.Context, c *ami.Client) {
			if c.Reconnects() > 0 {
				select {
				case resync <- struct{}{}:
				default:
				}
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	dd := directDialler(t, cfg, second, sink)
	go func() {
		for range resync {
			dd.Resync(ctx)
		}
	}()
	alive, err := dd.Reconcile(ctx, []dialler.Request{fax, call})
	if err != nil || !alive[fax.AttemptID] || !alive[call.AttemptID] {
		t.Fatalf("reconcile: %v %v; want both attempts up", alive, err)
	}

	// The call ends while the connection is up: a call result.
	var callRes dialler.Result
	select {
	case callRes = <-sink.res:
	case <-time.After(time.Minute):
		t.Fatal("no result for the adopted call")
	}
	if callRes.AttemptID != call.AttemptID || !callRes.OK() || !callRes.Acked || callRes.Digit != "1" {
		t.Fatalf("adopted call: %+v; want acknowledged with digit 1", callRes)
	}

	// The fax ends while the connection is cut: its result comes from AstDB.
	proxy.cut()
	deadline := time.Now().Add(2 * time.Minute)
	for upNow(t, ctx, first, fax.AttemptID) {
		if time.Now().After(deadline) {
			t.Fatal("the fax never ended")
		}
		time.Sleep(500 * time.Millisecond)
	}
	proxy.restore()
	select {
	case r := <-sink.res:
		if r.AttemptID != fax.AttemptID || !r.OK() || r.PagesSent != 1 || r.Code == failure.LineInterrupted {
			t.Fatalf("adopted fax after reconnecting: %+v; want delivered, 1 page", r)
		}
	case <-time.After(time.Minute):
		t.Fatal("no result for the adopted fax after reconnecting")
	}
}

// upNow reports whether Asterisk still has a channel with uniqueid id.
func upNow(t *testing.T, ctx context.Context, c *ami.Client, id string) bool {
	t.Helper()
	_, items, err := c.List(ctx, "CoreShowChannels")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range items {
		if m.Get("Uniqueid") == id {
			return true
		}
	}
	return false
}
