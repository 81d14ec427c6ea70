package config

import (
	"errors"
	"fmt"
)

// MediaHealth tunes what the box learns of its fax paths (package
// firmware/media/health). Zero values take the defaults: T.38 is tried
// again 24 h after its negotiation failed to a number; a lossy path gets
// ECM and at most 9600 bit/s until 3 clean attempts in a row; a trunk's
// alarm pools its last 10 attempts with a media report. The thresholds
// (of a lossy path, and of a trunk's alarm) default to the published
// figures: T.38 with redundancy survives up to ~10% loss, G.711 fax needs
// < 0.1% loss and < 30 ms jitter; 1% unrecoverable UDPTL gaps.
type MediaHealth struct {
	RetryT38After       Duration `json:"retry_t38_after"`
	T38LossPct          float64  `json:"t38_loss_pct"`
	T38UnrecoverablePct float64  `json:"t38_unrecoverable_pct"`
	RTPLossPct          float64  `json:"rtp_loss_pct"`
	RTPJitterMS         float64  `json:"rtp_jitter_ms"`
	LossyMaxRate        int      `json:"lossy_max_rate"`
	HealthyAttempts     int      `json:"healthy_attempts"`
	TrunkWindow         int      `json:"trunk_window"`
}

// check reports the media_health keys that cannot be used.
func (m MediaHealth) check() error {
	var errs []error
	if m.RetryT38After < 0 {
		errs = append(errs, errors.New("media_health.retry_t38_after must not be negative"))
	}
	for _, p := range []struct {
		key string
		v   float64
	}{{"t38_loss_pct", m.T38LossPct}, {"t38_unrecoverable_pct", m.T38UnrecoverablePct}, {"rtp_loss_pct", m.RTPLossPct}} {
		if p.v < 0 || p.v > 100 {
			errs = append(errs, fmt.Errorf("media_health.%s %v: a percentage, 0 (default) to 100", p.key, p.v))
		}
	}
	if m.RTPJitterMS < 0 {
		errs = append(errs, errors.New("media_health.rtp_jitter_ms must not be negative"))
	}
	switch m.LossyMaxRate {
	case 0, 2400, 4800, 7200, 9600, 12000, 14400:
	default:
		errs = append(errs, fmt.Errorf("media_health.lossy_max_rate %d: one of 2400, 4800, 7200, 9600, 12000, 14400", m.LossyMaxRate))
	}
	if m.HealthyAttempts < 0 {
		errs = append(errs, errors.New("media_health.healthy_attempts must not be negative"))
	}
	if m.TrunkWindow < 0 {
		errs = append(errs, errors.New("media_health.trunk_window must not be negative"))
	}
	return errors.Join(errs...)
}
