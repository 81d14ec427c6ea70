package box

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/engine"
	"github.com/faxbox/faxbox/firmware/media"
	"github.com/faxbox/faxbox/firmware/media/capture"
	"github.com/faxbox/faxbox/firmware/media/health"
)

// Asterisk's media port ranges and SIP port when the configuration names
// none (the ones rendered into rtp.conf, udptl.conf and pjsip.conf).
const (
	defaultRTPStart, defaultRTPEnd     = 10000, 10999
	defaultUDPTLStart, defaultUDPTLEnd = 4000, 4999
	defaultSIPPort                     = 5060
)

// mediaRanges returns the box's Asterisk RTP and UDPTL port ranges and its
// SIP port (as a range of one).
func mediaRanges(a *config.Asterisk) (rtp, udptl, sip []capture.PortRange) {
	rs, re, us, ue, sp := a.RTPStart, a.RTPEnd, a.UDPTLStart, a.UDPTLEnd, a.SIPPort
	if rs == 0 {
		rs, re = defaultRTPStart, defaultRTPEnd
	}
	if us == 0 {
		us, ue = defaultUDPTLStart, defaultUDPTLEnd
	}
	if sp == 0 {
		sp = defaultSIPPort
	}
	return []capture.PortRange{{First: uint16(rs), Last: uint16(re)}}, []capture.PortRange{{First: uint16(us), Last: uint16(ue)}},
		[]capture.PortRange{{First: uint16(sp), Last: uint16(sp)}}
}

// startMedia starts the passive media capture on the box's Asterisk port
// ranges (every interface) and returns the tracker that makes each
// attempt's media report, or nil without Asterisk. The capture needs
// CAP_NET_RAW; without it (or on any other error) the box runs on, logs
// why once, and every report on a SIP line says media is unavailable.
func (b *Box) startMedia(cfg config.Config) engine.MediaReporter {
	if cfg.Asterisk == nil || b.ami == nil {
		return nil
	}
	rtp, udptl, sip := mediaRanges(cfg.Asterisk)
	log := b.Log.With("component", "media")
	mc := capture.MonitorConfig{UDPTL: udptl, RTP: rtp, SIP: sip}
	c, err := capture.Open(capture.Config{Monitor: mc, Log: log})
	if err != nil {
		why := "media capture unavailable: " + err.Error()
		log.Warn("media capture unavailable: fax attempts' media reports will say so (faxbox needs CAP_NET_RAW for its AF_PACKET socket)",
			"err", err, "udptl", udptl[0].String(), "rtp", rtp[0].String())
		b.media = media.New(media.Config{UDPTL: udptl, RTP: rtp, Log: log}, nil, why)
		return b.media
	}
	ctx, cancel := context.WithCancel(context.Background())
	done, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		if err := c.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("media capture stopped", "err", err)
		}
	}()
	go func() {
		defer close(watched)
		tick := time.NewTicker(floodLogEvery)
		defer tick.Stop()
		watchFlood(ctx, c.Stats, tick.C, log)
	}()
	b.captureStop = func() { cancel(); c.Close(); <-done; <-watched }
	log.Info("media capture running", "udptl", udptl[0].String(), "rtp", rtp[0].String(), "sip", sip[0].First)
	b.media = media.New(media.Config{UDPTL: udptl, RTP: rtp, Log: log}, c, "")
	return b.media
}

// healthConfig maps the media_health keys onto the health book's
// configuration (zero values take the book's defaults).
func healthConfig(m config.MediaHealth, log *slog.Logger) health.Config {
	return health.Config{
		RetryT38After: m.RetryT38After.D(),
		Thresholds: health.Thresholds{T38LossPct: m.T38LossPct, T38UnrecoverablePct: m.T38UnrecoverablePct,
			RTPLossPct: m.RTPLossPct, RTPJitterMS: m.RTPJitterMS},
		LossyMaxRate: m.LossyMaxRate, HealthyAttempts: m.HealthyAttempts, TrunkWindow: m.TrunkWindow,
		Log: log,
	}
}

// mediaHealth is /v1/status's extra.media_health: alarm is set while a
// trunk's pooled media figures pass a threshold (the panel's alarm LED
// shows "T.38 health bad" then); capture is the media capture's state and
// counts (with Asterisk).
func (b *Box) mediaHealth() map[string]any {
	trunks := b.learned.Trunks()
	alarm := false
	for _, t := range trunks {
		alarm = alarm || t.Alarm
	}
	m := map[string]any{"alarm": alarm, "trunks": trunks}
	if cs, ok := b.captureStatus(time.Now()); ok {
		m["capture"] = cs
	}
	return m
}

// captureSource is what the box reads of its running capture.
type captureSource interface {
	Stats() capture.Stats
	DroppedBetween(from, to time.Time) capture.Drops
}

var _ captureSource = (*capture.Capture)(nil)

// CaptureStatus is the media capture's state and its counts since the box
// started (/v1/status extra.media_health.capture). A flood on the media
// port ranges shows as rate_limited (packets over the capture's rate
// limit, counted, not parsed), kernel_drops (the socket buffer
// overflowed), refused (packets of new flows while the flow table was
// full of live streams) and flood_evicted (flows that were no stream,
// replaced by new ones); flooding is set while the last minute had drops.
// A fax attempt whose call was up during such drops has a media report
// marked capture_incomplete, which the health rules ignore.
type CaptureStatus struct {
	Running      bool   `json:"running"`
	Unavailable  string `json:"unavailable,omitempty"` // why the capture does not run
	Packets      uint64 `json:"packets"`               // handed to the monitor
	RateLimited  uint64 `json:"rate_limited"`
	KernelDrops  uint64 `json:"kernel_drops"`
	Refused      uint64 `json:"refused"`
	FloodEvicted uint64 `json:"flood_evicted"`
	Flows        int    `json:"flows"`     // in the flow table
	MaxFlows     int    `json:"max_flows"` // its bound
	Flooding     bool   `json:"flooding"`
}

// captureStatus reads the capture's state at now; false without Asterisk.
func (b *Box) captureStatus(now time.Time) (CaptureStatus, bool) {
	if b.media == nil {
		return CaptureStatus{}, false
	}
	src, ok := b.media.Source().(captureSource)
	if !ok {
		return CaptureStatus{Unavailable: b.media.Unavailable()}, true
	}
	st := src.Stats()
	return CaptureStatus{Running: true, Packets: st.Packets, RateLimited: st.RateDropped, KernelDrops: st.KernelDrops,
		Refused: st.FlowsRefused, FloodEvicted: st.FloodEvicted, Flows: st.Flows, MaxFlows: st.MaxFlows,
		Flooding: src.DroppedBetween(now.Add(-floodLogEvery), now).Total() > 0}, true
}

// writeMetrics adds the media health figures and the capture's counts to
// /metrics.
func (b *Box) writeMetrics(w io.Writer) {
	if b.learned != nil {
		b.learned.WriteMetrics(w, b.Clock.Now())
	}
	if cs, ok := b.captureStatus(time.Now()); ok {
		writeCaptureMetrics(w, cs)
	}
}

// writeCaptureMetrics writes cs in the Prometheus text format.
func writeCaptureMetrics(w io.Writer, cs CaptureStatus) {
	for _, m := range []struct {
		name, kind, help string
		v                uint64
	}{
		{"faxbox_media_capture_up", "gauge", "Whether the passive media capture runs (it needs CAP_NET_RAW).", uint64(b2u(cs.Running))},
		{"faxbox_media_capture_packets_total", "counter", "Packets on the media port ranges handed to the capture's monitor.", cs.Packets},
		{"faxbox_media_capture_rate_limited_total", "counter", "Packets over the capture's rate limit: counted, not parsed (a flood).", cs.RateLimited},
		{"faxbox_media_capture_kernel_drops_total", "counter", "Packets the kernel dropped because the capture socket's buffer was full.", cs.KernelDrops},
		{"faxbox_media_capture_refused_total", "counter", "Packets of new flows refused while the flow table was full of live streams.", cs.Refused},
		{"faxbox_media_capture_flood_evicted_total", "counter", "Flows that were no stream (flood) replaced by new flows in a full table.", cs.FloodEvicted},
		{"faxbox_media_capture_flows", "gauge", "Flows in the capture's flow table.", uint64(cs.Flows)},
		{"faxbox_media_capture_flows_max", "gauge", "The bound of the capture's flow table.", uint64(cs.MaxFlows)},
		{"faxbox_media_capture_flooding", "gauge", "Whether the capture dropped packets in the last minute.", uint64(b2u(cs.Flooding))},
	} {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", m.name, m.help, m.name, m.kind, m.name, m.v)
	}
}

func b2u(v bool) int {
	if v {
		return 1
	}
	return 0
}

// floodLogEvery: while a flood makes the capture drop packets, one log
// line says so this often.
const floodLogEvery = time.Minute

// watchFlood logs, at each tick while the capture drops packets (over its
// rate limit, in the kernel, or refused for a full flow table), a warning
// with the drops since the last tick, and once when the drops stop. It
// returns when ctx ends.
func watchFlood(ctx context.Context, stats func() capture.Stats, tick <-chan time.Time, log *slog.Logger) {
	w := floodWatch{prev: stats()}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			w.check(stats(), log)
		}
	}
}

// floodWatch is watchFlood's state between ticks.
type floodWatch struct {
	prev     capture.Stats
	flooding bool
}

// check logs what changed from the last tick's counts to cur.
func (w *floodWatch) check(cur capture.Stats, log *slog.Logger) {
	prev := w.prev
	w.prev = cur
	rate, kern, refused := cur.RateDropped-prev.RateDropped, cur.KernelDrops-prev.KernelDrops, cur.FlowsRefused-prev.FlowsRefused
	switch {
	case rate+kern+refused > 0:
		log.Warn("media capture: flood on the media ports, packets dropped (fax attempts meanwhile get media reports marked capture_incomplete)",
			"rate_limited", rate, "kernel_drops", kern, "refused", refused, "packets", cur.Packets-prev.Packets,
			"flows", cur.Flows, "max_flows", cur.MaxFlows)
		w.flooding = true
	case w.flooding:
		log.Info("media capture: the flood is over, no packets dropped since the last report")
		w.flooding = false
	}
}
