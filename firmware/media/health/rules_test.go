package health

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/job"
)

// t38Media is a T.38 report whose received direction had packets datagrams,
// gaps sequence gaps of which unrec were not repaired.
func t38Media(packets, gaps, unrec int) *job.MediaReport {
	return &job.MediaReport{Transport: "t38", T38: &job.T38Report{
		Sent:     job.UDPTLDirection{Packets: 300},
		Received: job.UDPTLDirection{Packets: packets, Gaps: gaps, Recovered: gaps - unrec, Unrecoverable: unrec},
	}}
}

// rtpMedia is a G.711 report whose received direction lost lost of
// expected packets with jitter ms.
func rtpMedia(expected, lost int, jitter float64) *job.MediaReport {
	return &job.MediaReport{Transport: "g711", RTP: &job.RTPReport{
		Sent:     job.RTPDirection{Packets: 1000, Expected: 1000, JitterMS: 1},
		Received: job.RTPDirection{Packets: expected - lost, Expected: expected, Lost: lost, JitterMS: jitter},
	}}
}

func mediaAttempt(trunk string, m *job.MediaReport) *job.Attempt {
	a := &job.Attempt{T38: m != nil && m.T38 != nil, Result: job.AttemptDelivered, Line: job.LineID{Group: trunk, N: 1}, Media: m}
	if a.T38 {
		a.Transport = "t38"
	} else {
		a.Transport = "g711"
	}
	return a
}

func TestLossyRule(t *testing.T) {
	cases := []struct {
		name     string
		media    *job.MediaReport
		decision string // "" = defaults
	}{
		{"clean T.38", t38Media(400, 0, 0), ""},
		{"recovered gaps only", t38Media(380, 20, 0), ""},
		{"unrecoverable 3%", t38Media(291, 9, 9), "ECM on, 9600 because of 3% unrecoverable loss to this number on 2026-12-03 07:00 UTC"},
		{"unrecoverable just under 1%", t38Media(398, 3, 3), ""},
		{"beyond redundancy (12% gaps, all repaired)", t38Media(352, 48, 0), "ECM on, 9600 because of 12% UDPTL loss to this number on 2026-12-03 07:00 UTC"},
		{"too short to judge", t38Media(10, 5, 5), ""},
		{"G.711 clean", rtpMedia(2000, 1, 5), ""},
		{"G.711 1% loss", rtpMedia(2000, 20, 5), "ECM on, 9600 because of 1% RTP loss to this number on 2026-12-03 07:00 UTC"},
		{"G.711 jitter 45 ms", rtpMedia(2000, 0, 45), "ECM on, 9600 because of 45 ms RTP jitter to this number on 2026-12-03 07:00 UTC"},
		{"no report", nil, ""},
		{"report unavailable", &job.MediaReport{Unavailable: "no capture"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := Open(memState{}, Config{})
			if err != nil {
				t.Fatal(err)
			}
			b.Observe("200", mediaAttempt("trunk", c.media), false, t0)
			ecm, rate, why := b.AdvisePath("200", t0.Add(time.Minute), false, false)
			if why != c.decision {
				t.Fatalf("decision %q, want %q", why, c.decision)
			}
			if wantECM, wantRate := c.decision != "", 0; ecm != wantECM || (c.decision != "" && rate != 9600) || (c.decision == "" && rate != wantRate) {
				t.Errorf("ecm %v rate %d", ecm, rate)
			}
			if _, _, other := b.AdvisePath("201", t0, false, false); other != "" {
				t.Errorf("another number advised: %q", other)
			}
		})
	}
}

func TestHealthyHistoryReturnsDefaults(t *testing.T) {
	st := memState{}
	b, _ := Open(st, Config{HealthyAttempts: 2, LossyMaxRate: 7200})
	clean, lossy := t38Media(400, 0, 0), t38Media(291, 9, 9)
	steps := []struct {
		media *job.MediaReport
		want  string // decision prefix, "" = defaults
	}{
		{lossy, "ECM on, 7200 because of 3% unrecoverable loss"},
		{clean, "ECM on, 7200 because of 3% unrecoverable loss to this number on 2026-12-03 07:00 UTC (1 of 2 clean attempts since)"},
		{lossy, "ECM on, 7200 because of 3% unrecoverable loss to this number on 2026-12-03 09:00 UTC"}, // a lossy one starts over
		{clean, "ECM on, 7200 because"},
		{clean, ""},
		{clean, ""},
	}
	for i, s := range steps {
		now := t0.Add(time.Duration(i) * time.Hour)
		b.Observe("300", mediaAttempt("trunk", s.media), false, now)
		// Durable: every step is judged by a book opened afresh.
		b2, err := Open(st, Config{HealthyAttempts: 2, LossyMaxRate: 7200})
		if err != nil {
			t.Fatal(err)
		}
		_, rate, why := b2.AdvisePath("300", now, false, false)
		if !strings.HasPrefix(why, s.want) || (s.want == "") != (why == "") {
			t.Fatalf("step %d: decision %q, want %q…", i, why, s.want)
		}
		if s.want != "" && rate != 7200 {
			t.Errorf("step %d: rate %d", i, rate)
		}
	}
	if _, ok := st[StateKey]; !ok {
		t.Fatal("nothing stored")
	}
	if b.recs["300"] != (Record{}) {
		t.Errorf("record kept after a healthy history: %+v", b.recs["300"])
	}
}

func TestConfigOverridesWin(t *testing.T) {
	b, _ := Open(memState{}, Config{})
	b.Observe("400", mediaAttempt("trunk", t38Media(291, 9, 9)), false, t0)
	cases := []struct {
		fixedECM, fixedRate bool
		ecm                 bool
		rate                int
		decision            string
	}{
		{false, false, true, 9600, "ECM on, 9600 because"},
		{true, false, false, 9600, "9600 because"},
		{false, true, true, 0, "ECM on because"},
		{true, true, false, 0, ""},
	}
	for _, c := range cases {
		ecm, rate, why := b.AdvisePath("400", t0, c.fixedECM, c.fixedRate)
		if ecm != c.ecm || rate != c.rate || !strings.HasPrefix(why, c.decision) || (c.decision == "") != (why == "") {
			t.Errorf("fixed ecm %v rate %v: got %v %d %q", c.fixedECM, c.fixedRate, ecm, rate, why)
		}
	}
}

func TestT38AndLossyRecordsTogether(t *testing.T) {
	b, _ := Open(memState{}, Config{})
	a := mediaAttempt("trunk", rtpMedia(2000, 40, 5))
	a.T38, a.Result, a.Error = true, job.AttemptFailed, &job.Error{Code: "fax.t38_negotiation"}
	b.Observe("500", a, false, t0)
	if avoid, _ := b.AvoidT38("500", t0); !avoid {
		t.Error("T.38 failure not learned")
	}
	if _, _, why := b.AdvisePath("500", t0, false, false); !strings.Contains(why, "2% RTP loss") {
		t.Errorf("lossy not learned: %q", why)
	}
	// A T.38 delivery clears the T.38 record, not the lossy one.
	b.Observe("500", mediaAttempt("trunk", nil), false, t0)
	d := mediaAttempt("trunk", nil)
	d.T38 = true
	d.Transport = "t38"
	b.Observe("500", d, false, t0)
	if avoid, _ := b.AvoidT38("500", t0); avoid {
		t.Error("T.38 record kept after a T.38 delivery")
	}
	if _, _, why := b.AdvisePath("500", t0, false, false); why == "" {
		t.Error("lossy record lost")
	}
}

func TestTrunkAlarm(t *testing.T) {
	clean, lossyT38 := t38Media(400, 0, 0), t38Media(291, 9, 9)
	cases := []struct {
		name   string
		size   int // the trunk window
		window []*job.MediaReport
		alarm  bool
		why    string
	}{
		{"clean", 3, []*job.MediaReport{clean, clean, rtpMedia(2000, 0, 3)}, false, ""},
		{"one lossy among clean (pooled: 9 of 2300 = 0.39%)", 10, []*job.MediaReport{clean, clean, clean, clean, clean, lossyT38}, false, ""},
		{"unrecoverable 3%", 3, []*job.MediaReport{lossyT38}, true, "3% unrecoverable UDPTL gaps (threshold 1)"},
		{"UDPTL loss beyond redundancy", 3, []*job.MediaReport{t38Media(350, 50, 0)}, true, "12% UDPTL loss (threshold 10)"},
		{"RTP loss 0.5%", 3, []*job.MediaReport{rtpMedia(2000, 10, 3)}, true, "0.5% RTP loss (threshold 0.1)"},
		{"RTP jitter", 3, []*job.MediaReport{rtpMedia(2000, 0, 20), rtpMedia(2000, 0, 50)}, true, "35 ms RTP jitter (threshold 30)"},
		{"old lossy attempts left the window", 3, []*job.MediaReport{lossyT38, lossyT38, clean, clean, clean}, false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := memState{}
			b, _ := Open(st, Config{TrunkWindow: c.size})
			for i, m := range c.window {
				b.Observe("600", mediaAttempt("sip", m), false, t0.Add(time.Duration(i)*time.Minute))
			}
			b2, _ := Open(st, Config{TrunkWindow: c.size})
			for _, book := range []*Book{b, b2} {
				if book.Alarm() != c.alarm {
					t.Fatalf("alarm %v, want %v: %+v", book.Alarm(), c.alarm, book.Trunks())
				}
			}
			hs := b.Trunks()
			if len(hs) != 1 || hs[0].Trunk != "sip" {
				t.Fatalf("trunks %+v", hs)
			}
			if got := strings.Join(hs[0].Why, "; "); got != c.why {
				t.Errorf("why %q, want %q", got, c.why)
			}
		})
	}
}

func TestThresholdsConfigured(t *testing.T) {
	b, _ := Open(memState{}, Config{Thresholds: Thresholds{T38UnrecoverablePct: 5, RTPLossPct: 2}})
	b.Observe("700", mediaAttempt("sip", t38Media(291, 9, 9)), false, t0)   // 3% < 5%
	b.Observe("701", mediaAttempt("sip", rtpMedia(2000, 20, 3)), false, t0) // 1% < 2%
	for _, n := range []string{"700", "701"} {
		if _, _, why := b.AdvisePath(n, t0, false, false); why != "" {
			t.Errorf("%s lossy under raised thresholds: %q", n, why)
		}
	}
	if b.Alarm() {
		t.Errorf("alarm under raised thresholds: %+v", b.Trunks())
	}
}

func TestMetrics(t *testing.T) {
	b, _ := Open(memState{}, Config{})
	b.Observe("800", mediaAttempt("sip", t38Media(291, 9, 9)), false, t0)
	b.Observe("801", mediaAttempt("pots", rtpMedia(2000, 0, 4)), false, t0)
	var w bytes.Buffer
	b.WriteMetrics(&w, t0)
	for _, want := range []string{
		"# TYPE faxbox_media_alarm gauge\n",
		`faxbox_media_alarm{trunk="pots"} 0` + "\n",
		`faxbox_media_alarm{trunk="sip"} 1` + "\n",
		`faxbox_media_t38_unrecoverable_ratio{trunk="sip"} 0.03` + "\n",
		`faxbox_media_rtp_jitter_seconds{trunk="pots"} 0.004` + "\n",
		"faxbox_media_destinations_lossy 1\n",
		"faxbox_media_destinations_g711_first 0\n",
	} {
		if !strings.Contains(w.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, w.String())
		}
	}
}

// failState refuses to save.
type failState struct{ memState }

func (failState) PutState(string, any) error { return errors.New("disk full") }

func TestSaveFailureKeepsWorking(t *testing.T) {
	b, _ := Open(failState{memState{}}, Config{})
	b.Observe("900", mediaAttempt("sip", t38Media(291, 9, 9)), false, t0)
	if _, _, why := b.AdvisePath("900", t0, false, false); why == "" {
		t.Error("a record that could not be saved is not used")
	}
}

// TestIncompleteCaptureIgnored: a report the capture marked incomplete (a
// flood made it drop packets during the call) shows heavy loss, but
// teaches no lossy path and raises no trunk alarm; the same figures
// without the mark do both, and a lossy record is not ended by it either.
func TestIncompleteCaptureIgnored(t *testing.T) {
	flooded := func(m *job.MediaReport) *job.MediaReport {
		m.CaptureIncomplete, m.CaptureDropped = true, 40000
		return m
	}
	b, _ := Open(memState{}, Config{TrunkWindow: 3})
	b.Observe("800", mediaAttempt("sip", flooded(t38Media(240, 60, 60))), false, t0)
	b.Observe("801", mediaAttempt("sip", flooded(rtpMedia(2000, 200, 80))), false, t0)
	for _, n := range []string{"800", "801"} {
		if _, _, why := b.AdvisePath(n, t0.Add(time.Minute), false, false); why != "" {
			t.Errorf("%s: lossy path learned from an incomplete capture: %q", n, why)
		}
	}
	if b.Alarm() || len(b.Trunks()) != 0 {
		t.Errorf("trunk figures from an incomplete capture: %+v", b.Trunks())
	}

	// The same figures, complete: lossy and in alarm.
	b.Observe("800", mediaAttempt("sip", t38Media(240, 60, 60)), false, t0)
	if _, _, why := b.AdvisePath("800", t0.Add(time.Minute), false, false); !strings.Contains(why, "20% unrecoverable loss") {
		t.Errorf("complete report: decision %q", why)
	}
	if !b.Alarm() {
		t.Errorf("complete report: no alarm: %+v", b.Trunks())
	}
	// Clean-looking but incomplete reports do not count as clean attempts.
	for i := range DefaultHealthyAttempts {
		b.Observe("800", mediaAttempt("sip", flooded(t38Media(400, 0, 0))), false, t0.Add(time.Duration(i+1)*time.Minute))
	}
	if _, _, why := b.AdvisePath("800", t0.Add(time.Hour), false, false); !strings.Contains(why, "20% unrecoverable loss") || strings.Contains(why, "clean attempts since") {
		t.Errorf("incomplete reports counted as clean: %q", why)
	}
}
