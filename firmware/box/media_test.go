package box

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/media"
	"github.com/faxbox/faxbox/firmware/media/capture"
	"github.com/faxbox/faxbox/firmware/media/health"
)

// memState is the health book's State in memory (JSON, like the store).
type memState map[string][]byte

func (m memState) PutState(name string, v any) error {
	b, err := json.Marshal(v)
	m[name] = b
	return err
}

func (m memState) GetState(name string, v any) (bool, error) {
	b, ok := m[name]
	if !ok {
		return false, nil
	}
	return true, json.Unmarshal(b, v)
}

// TestRetryT38AfterConfigured: media_health.retry_t38_after from the
// configuration file reaches the health book: a destination whose T.38
// negotiation failed goes G.711 first for that long (48 h here, not the
// default 24 h), then T.38 is tried again; without the key, 24 h.
func TestRetryT38AfterConfigured(t *testing.T) {
	at := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		json  string
		after time.Duration
	}{
		{`{"media_health": {"retry_t38_after": "48h"}}`, 48 * time.Hour},
		{`{"media_health": {"retry_t38_after": 7200}}`, 2 * time.Hour},
		{`{}`, health.DefaultRetryT38After},
	} {
		path := filepath.Join(t.TempDir(), "faxbox.json")
		if err := os.WriteFile(path, []byte(c.json), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatalf("%s: %v", c.json, err)
		}
		book, err := health.Open(memState{}, healthConfig(cfg.MediaHealth, slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		failed := &job.Attempt{T38: true, Result: job.AttemptFailed, Error: &job.Error{Code: failure.FaxT38Negotiation}}
		book.Observe("0301234", failed, false, at)
		if avoid, why := book.AvoidT38("0301234", at.Add(c.after-time.Minute)); !avoid {
			t.Errorf("%s: T.38 tried again %v after its failure: %q", c.json, c.after-time.Minute, why)
		}
		if avoid, why := book.AvoidT38("0301234", at.Add(c.after)); avoid || !strings.Contains(why, "T.38 tried again") {
			t.Errorf("%s: still G.711 first %v after the failure: %q", c.json, c.after, why)
		}
	}
	path := filepath.Join(t.TempDir(), "faxbox.json")
	if err := os.WriteFile(path, []byte(`{"tokens": ["a-long-token"], "media_health": {"retry_t38_after": "-1h"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "media_health.retry_t38_after") {
		t.Errorf("a negative retry_t38_after: %v", err)
	}
}

// monitorCapture is a capture whose monitor the test feeds.
type monitorCapture struct {
	*capture.Monitor
	kernelDrops uint64
}

func (c *monitorCapture) Stats() capture.Stats {
	return capture.Stats{Counters: c.Counters(), KernelDrops: c.kernelDrops}
}

// floodPkt is an IPv4 UDP datagram of garbage from sport to a UDPTL port.
func floodPkt(sport uint16) []byte {
	b := make([]byte, 28+4)
	b[0], b[9] = 0x45, 17
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	copy(b[12:], []byte{192, 0, 2, 66, 10, 0, 0, 1})
	binary.BigEndian.PutUint16(b[20:], sport)
	binary.BigEndian.PutUint16(b[22:], 4500)
	binary.BigEndian.PutUint16(b[24:], 12)
	copy(b[28:], []byte{0xde, 0xad, 0xbe, 0xef})
	return b
}

// TestCaptureFloodReported: a flood on the media ports shows in
// /v1/status's extra.media_health.capture, in /metrics and in one log
// line a minute while it lasts (one more when it ends).
func TestCaptureFloodReported(t *testing.T) {
	urange := []capture.PortRange{{First: 4000, Last: 4999}}
	mc := &monitorCapture{Monitor: capture.NewMonitor(capture.MonitorConfig{UDPTL: urange, Rate: 100, Burst: 10, MaxFlows: 16})}
	b := &Box{media: media.New(media.Config{UDPTL: urange}, mc, "")}
	now := time.Now()
	for i := range 1000 {
		mc.Handle(floodPkt(uint16(20000+i)), now.Add(-time.Duration(1000-i)*time.Millisecond))
	}
	mc.kernelDrops = 5

	cs, ok := b.captureStatus(now)
	if !ok || !cs.Running || cs.Packets != 1000 || cs.RateLimited == 0 || cs.KernelDrops != 5 || cs.Flows != 16 || cs.MaxFlows != 16 ||
		cs.FloodEvicted == 0 || !cs.Flooding {
		t.Errorf("capture status under a flood: %+v", cs)
	}
	if later, _ := b.captureStatus(now.Add(2 * time.Minute)); later.Flooding {
		t.Errorf("still flooding two minutes later: %+v", later)
	}
	var buf bytes.Buffer
	b.writeMetrics(&buf)
	for _, line := range []string{"faxbox_media_capture_up 1", "faxbox_media_capture_packets_total 1000",
		"faxbox_media_capture_rate_limited_total " + itoa(cs.RateLimited), "faxbox_media_capture_kernel_drops_total 5",
		"faxbox_media_capture_flows 16", "faxbox_media_capture_flooding 1", "# TYPE faxbox_media_capture_refused_total counter"} {
		if !strings.Contains(buf.String(), line+"\n") {
			t.Errorf("/metrics lacks %q:\n%s", line, buf.String())
		}
	}

	// Without the capture: down, and why.
	off := &Box{media: media.New(media.Config{UDPTL: urange}, nil, "media capture unavailable: operation not permitted")}
	if cs, ok := off.captureStatus(now); !ok || cs.Running || cs.Unavailable == "" {
		t.Errorf("capture status without a capture: %+v", cs)
	}
	buf.Reset()
	off.writeMetrics(&buf)
	if !strings.Contains(buf.String(), "faxbox_media_capture_up 0\n") {
		t.Errorf("/metrics without a capture:\n%s", buf.String())
	}
}

func itoa(v uint64) string { b, _ := json.Marshal(v); return string(b) }

// TestWatchFloodLogs: a warning at each tick that saw drops, one line
// when they stop, nothing while the capture is quiet; watchFlood ends with
// its context.
func TestWatchFloodLogs(t *testing.T) {
	urange := []capture.PortRange{{First: 4000, Last: 4999}}
	mc := &monitorCapture{Monitor: capture.NewMonitor(capture.MonitorConfig{UDPTL: urange, Rate: 100, Burst: 10})}
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	w := floodWatch{prev: mc.Stats()}
	start := time.Now()
	step := func(flood int) string {
		for i := range flood {
			mc.Handle(floodPkt(uint16(20000+i)), start)
		}
		logged.Reset()
		w.check(mc.Stats(), log)
		return logged.String()
	}
	if out := step(0); out != "" {
		t.Errorf("quiet capture logged: %s", out)
	}
	out := step(500)
	if n := strings.Count(out, "level=WARN"); n != 1 || !strings.Contains(out, "rate_limited=490") || !strings.Contains(out, "packets=500") {
		t.Errorf("flood: %d warnings: %s", n, out)
	}
	mc.kernelDrops = 3
	if out := step(0); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "kernel_drops=3") || !strings.Contains(out, "rate_limited=0") {
		t.Errorf("kernel drops: %q", out)
	}
	if out := step(0); !strings.Contains(out, "the flood is over") {
		t.Errorf("flood over: %q", out)
	}
	if out := step(0); out != "" {
		t.Errorf("quiet again, logged: %s", out)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { watchFlood(ctx, mc.Stats, make(chan time.Time), log); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("watchFlood did not end with its context")
	}
}
