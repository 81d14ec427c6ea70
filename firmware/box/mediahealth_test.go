package box

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/panel"
)

// TestMediaHealthAlarm: a trunk whose attempts show unrecoverable UDPTL
// gaps above media_health.t38_unrecoverable_pct raises the panel's alarm,
// /v1/status's extra.media_health.alarm and /metrics' faxbox_media_alarm;
// clean attempts pushing the lossy one out of the window clear them.
func TestMediaHealthAlarm(t *testing.T) {
	e := startBox(t, func(c *config.Config) {
		c.MediaHealth = config.MediaHealth{T38UnrecoverablePct: 2, TrunkWindow: 2}
	})
	attempt := func(unrec int) *job.Attempt {
		return &job.Attempt{T38: true, Transport: "t38", Result: job.AttemptDelivered, Line: job.LineID{Group: "sip", N: 1},
			Media: &job.MediaReport{Transport: "t38", T38: &job.T38Report{
				Received: job.UDPTLDirection{Packets: 300 - unrec, Gaps: unrec, Unrecoverable: unrec}}}}
	}
	check := func(want bool) {
		t.Helper()
		if got := slices.Contains(e.box.alarms(nil), panel.T38Unhealthy); got != want {
			t.Errorf("panel alarm %v, want %v", got, want)
		}
		var st struct {
			Extra struct {
				MediaHealth struct {
					Alarm bool `json:"alarm"`
				} `json:"media_health"`
			} `json:"extra"`
		}
		e.c.Do(t, "GET", "/v1/status", nil, "", &st)
		if st.Extra.MediaHealth.Alarm != want {
			t.Errorf("/v1/status media_health.alarm %v, want %v", st.Extra.MediaHealth.Alarm, want)
		}
		r := e.c.Do(t, "GET", "/metrics", nil, "", nil)
		b, _ := io.ReadAll(r.Body)
		line := `faxbox_media_alarm{trunk="sip"} 0`
		if want {
			line = `faxbox_media_alarm{trunk="sip"} 1`
		}
		if !strings.Contains(string(b), line+"\n") {
			t.Errorf("/metrics lacks %s", line)
		}
	}
	now := time.Now()
	e.box.learned.Observe("0301234", attempt(3), false, now) // 1% < 2%
	check(false)
	e.box.learned.Observe("0301234", attempt(9), false, now) // pooled 2% ≥ 2%
	check(true)
	e.box.learned.Observe("0301234", attempt(0), false, now)
	e.box.learned.Observe("0301234", attempt(0), false, now)
	check(false)
}
