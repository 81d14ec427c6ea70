//go:build lab

package asterisk_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/ami"
	"github.com/faxbox/faxbox/firmware/asterisk"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/internal/testkit"
	"github.com/faxbox/faxbox/tools/lab"
)

// resultSink hands the dialler's results to the test.
type resultSink struct{ ch chan dialler.Result }

func (s resultSink) Progress(dialler.Progress) {}
func (s resultSink) Result(r dialler.Result)   { s.ch <- r }

// TestMaxRateCapsTheModem: the fallback ladder's "at most 9600 bit/s" step
// reaches spandsp. res_fax only checks FAXOPT(maxrate) against the modems,
// so the dialplan drops V.17 from FAXOPT(modems) at 9600 and below; the same
// fax to 100 then goes at 9600 instead of 14400 (the rate Asterisk reports
// is the negotiated one).
func TestMaxRateCapsTheModem(t *testing.T) {
	_, cfg, tif := directLab(t, "maxrate", 31060)
	a := cfg.Asterisk
	client, err := ami.Dial(context.Background(), ami.Config{Addr: a.AMIAddr, Username: a.AMIUser, Secret: a.AMISecret})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sink := resultSink{ch: make(chan dialler.Result, 4)}
	d := directDialler(t, cfg, client, sink)
	ctx := context.Background()
	for _, c := range []struct{ maxRate, want int }{{9600, 9600}, {0, 14400}} {
		id := fmt.Sprintf("at_maxrate_%d", c.maxRate)
		err := d.Dial(ctx, dialler.Request{AttemptID: id, JobID: "fx_maxrate", To: "100", Line: job.LineAt(lab.TrunkName, 0),
			Fax: &dialler.FaxSpec{TIFF: tif, FirstPage: 1, Pages: 1, TotalPages: 1, StationID: "FAXBOX LAB", ECM: true, T38: true, MaxRate: c.maxRate}})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-sink.ch:
			if !r.OK() || r.PagesSent != 1 || r.BitRate != c.want {
				t.Errorf("max rate %d: %+v; want delivered at %d bit/s", c.maxRate, r, c.want)
			}
		case <-time.After(3 * time.Minute):
			t.Fatalf("max rate %d: no result", c.maxRate)
		}
	}
}

// directLab brings a lab up for a test that drives the dialler itself: the
// lab, the faxbox config wired to it, and a one-page fax TIFF in a
// directory Asterisk can read.
func directLab(t *testing.T, name string, base int) (*lab.Lab, config.Config, string) {
	t.Helper()
	testkit.Require(t, "gs", "debootstrap")
	data := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Name: name, BasePort: base, Share: []string{data}, Log: testWriter{t}})
	if err != nil {
		t.Fatalf("the Asterisk lab did not come up: %v", err)
	}
	t.Cleanup(l.Down)
	tif := filepath.Join(data, "page.tif")
	if err := os.WriteFile(tif, testkit.FaxTIFF(t, 1), 0o644); err != nil {
		t.Fatal(err)
	}
	return l, l.FaxboxConfig(config.Default()), tif
}

// directDialler is the trunk group's AMI dialler on client, fed its events.
func directDialler(t *testing.T, cfg config.Config, client *ami.Client, sink dialler.Sink) *asterisk.Dialler {
	t.Helper()
	d, err := asterisk.New(asterisk.Config{Group: lab.TrunkName, Dial: cfg.LineGroups[0].Dial, Transport: "ami", SpoolDir: cfg.Asterisk.SpoolDir, UID: -1, GID: -1}, client, sink)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for m := range client.Events() {
			d.Handle(m)
		}
	}()
	return d
}
