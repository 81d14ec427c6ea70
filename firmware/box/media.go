package box

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/engine"
	"github.com/faxbox/faxbox/firmware/media"
	"github.com/faxbox/faxbox/firmware/media/capture"
	"github.com/faxbox/faxbox/firmware/media/health"
)

// Asterisk's media port ranges when the configuration names none (the
// ones rendered into rtp.conf and udptl.conf).
const (
	defaultRTPStart, defaultRTPEnd     = 10000, 10999
	defaultUDPTLStart, defaultUDPTLEnd = 4000, 4999
)

// mediaRanges returns the box's Asterisk RTP and UDPTL port ranges.
func mediaRanges(a *config.Asterisk) (rtp, udptl []capture.PortRange) {
	rs, re, us, ue := a.RTPStart, a.RTPEnd, a.UDPTLStart, a.UDPTLEnd
	if rs == 0 {
		rs, re = defaultRTPStart, defaultRTPEnd
	}
	if us == 0 {
		us, ue = defaultUDPTLStart, defaultUDPTLEnd
	}
	return []capture.PortRange{{First: uint16(rs), Last: uint16(re)}}, []capture.PortRange{{First: uint16(us), Last: uint16(ue)}}
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
	rtp, udptl := mediaRanges(cfg.Asterisk)
	log := b.Log.With("component", "media")
	mc := capture.MonitorConfig{UDPTL: udptl, RTP: rtp}
	c, err := capture.Open(capture.Config{Monitor: mc, Log: log})
	if err != nil {
		why := "media capture unavailable: " + err.Error()
		log.Warn("media capture unavailable: fax attempts' media reports will say so (faxbox needs CAP_NET_RAW for its AF_PACKET socket)",
			"err", err, "udptl", udptl[0].String(), "rtp", rtp[0].String())
		b.media = media.New(media.Config{UDPTL: udptl, RTP: rtp, Log: log}, nil, why)
		return b.media
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := c.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("media capture stopped", "err", err)
		}
	}()
	b.captureStop = func() { cancel(); c.Close(); <-done }
	log.Info("media capture running", "udptl", udptl[0].String(), "rtp", rtp[0].String())
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
// shows "T.38 health bad" then).
func (b *Box) mediaHealth() map[string]any {
	trunks := b.learned.Trunks()
	alarm := false
	for _, t := range trunks {
		alarm = alarm || t.Alarm
	}
	return map[string]any{"alarm": alarm, "trunks": trunks}
}

// writeMetrics adds the media health figures to /metrics.
func (b *Box) writeMetrics(w io.Writer) {
	if b.learned != nil {
		b.learned.WriteMetrics(w, b.Clock.Now())
	}
}
