//go:build lab

package asterisk_test

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/ami"
	"github.com/faxbox/faxbox/firmware/asterisk"
	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/tools/lab"
)

// amiCut is a TCP proxy in front of a manager interface that can cut every
// connection and refuse new ones until restored.
type amiCut struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  []net.Conn
}

func newAMICut(t *testing.T, target string) *amiCut {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &amiCut{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			down := p.down
			p.mu.Unlock()
			if down {
				c.Close()
				continue
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
	return p
}

func (p *amiCut) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *amiCut) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// progressSink hands results and progress to the test.
type progressSink struct {
	res  chan dialler.Result
	prog chan dialler.Progress
}

func (s progressSink) Progress(p dialler.Progress) {
	select {
	case s.prog <- p:
	default:
	}
}
func (s progressSink) Result(r dialler.Result) { s.res <- r }

// TestResultKeptWhileManagerDown: the manager connection drops while a fax
// is being sent and the call ends before it is back, so the FaxboxResult
// event is lost. On reconnect the dialler reads the result the dialplan kept
// in AstDB and reports the fax delivered — not line.interrupted, which would
// send a delivered fax again.
func TestResultKeptWhileManagerDown(t *testing.T) {
	_, cfg, tif := directLab(t, "lostresult", 32060)
	a := cfg.Asterisk
	ctx := context.Background()
	proxy := newAMICut(t, a.AMIAddr)
	var d *asterisk.Dialler
	var dmu sync.Mutex
	client, err := ami.Dial(ctx, ami.Config{Addr: proxy.ln.Addr().String(), Username: a.AMIUser, Secret: a.AMISecret, Keepalive: time.Second,
		OnConnect: func(ctx context.Context, c *ami.Client) {
			dmu.Lock()
			dd := d
			dmu.Unlock()
			if c.Reconnects() > 0 && dd != nil {
				dd.Resync(ctx)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sink := progressSink{res: make(chan dialler.Result, 4), prog: make(chan dialler.Progress, 64)}
	dd := directDialler(t, cfg, client, sink)
	dmu.Lock()
	d = dd
	dmu.Unlock()
	// A second, direct connection sees the call end while the first is cut.
	mon, err := ami.Dial(ctx, ami.Config{Addr: a.AMIAddr, Username: a.AMIUser, Secret: a.AMISecret})
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	ended := make(chan struct{})
	go func() {
		for m := range mon.Events() {
			if m.Get("UserEvent") == "FaxboxResult" && m.Get("Attempt") == "at_lost_1" {
				close(ended)
				return
			}
		}
	}()

	if err := dd.Dial(ctx, dialler.Request{AttemptID: "at_lost_1", JobID: "fx_lost", To: "100", Line: job.LineAt(lab.TrunkName, 0),
		Fax: &dialler.FaxSpec{TIFF: tif, FirstPage: 1, Pages: 1, TotalPages: 1, StationID: "FAXBOX LAB", ECM: true, T38: true}}); err != nil {
		t.Fatal(err)
	}
	for p := range sink.prog {
		if p.State == dialler.StateSending {
			break
		}
	}
	proxy.cut()
	select {
	case <-ended:
	case <-time.After(2 * time.Minute):
		t.Fatal("the call never ended")
	}
	select {
	case r := <-sink.res:
		t.Fatalf("a result while the manager connection was down: %+v", r)
	case <-time.After(500 * time.Millisecond):
	}
	proxy.restore()
	select {
	case r := <-sink.res:
		if !r.OK() || r.PagesSent != 1 || r.BitRate == 0 {
			t.Fatalf("after reconnecting: %+v; want delivered, 1 page", r)
		}
	case <-time.After(time.Minute):
		t.Fatal("no result after reconnecting")
	}
}
