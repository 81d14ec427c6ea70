package config

import (
	"strings"
	"testing"
	"time"
)

func TestMediaHealthKeys(t *testing.T) {
	cases := []struct {
		m   MediaHealth
		err string // "" = valid
	}{
		{MediaHealth{}, ""},
		{MediaHealth{RetryT38After: Duration(48 * time.Hour), T38LossPct: 8, T38UnrecoverablePct: 0.5, RTPLossPct: 0.2, RTPJitterMS: 40,
			LossyMaxRate: 7200, HealthyAttempts: 5, TrunkWindow: 20}, ""},
		{MediaHealth{RetryT38After: Duration(-time.Hour)}, "retry_t38_after"},
		{MediaHealth{T38LossPct: 101}, "t38_loss_pct"},
		{MediaHealth{RTPLossPct: -1}, "rtp_loss_pct"},
		{MediaHealth{RTPJitterMS: -1}, "rtp_jitter_ms"},
		{MediaHealth{LossyMaxRate: 9000}, "lossy_max_rate"},
		{MediaHealth{TrunkWindow: -1}, "trunk_window"},
	}
	for _, c := range cases {
		cfg := Default()
		cfg.Tokens = []string{"a-long-token"}
		cfg.MediaHealth = c.m
		err := cfg.Validate()
		if (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), "media_health."+c.err)) {
			t.Errorf("%+v: %v, want %q", c.m, err, c.err)
		}
	}
}
