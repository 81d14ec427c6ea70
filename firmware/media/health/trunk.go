package health

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/faxbox/faxbox/firmware/job"
)

// Thresholds of a lossy path and of a trunk in alarm. The defaults are the
// published figures: T.38 with redundancy survives up to about 10% packet
// loss; G.711 fax needs less than 0.1% loss and less than 30 ms jitter;
// an unrecoverable UDPTL gap loses part of a page or a T.30 message, so
// more than 1% of them is a lossy path even where the fax got through.
type Thresholds struct {
	T38LossPct          float64 // UDPTL sequence gaps, recovered or not (default 10)
	T38UnrecoverablePct float64 // UDPTL gaps neither redundancy nor FEC repaired (default 1)
	RTPLossPct          float64 // default 0.1
	RTPJitterMS         float64 // RFC 3550 interarrival jitter (default 30)
}

// Default thresholds.
const (
	DefaultT38LossPct          = 10
	DefaultT38UnrecoverablePct = 1
	DefaultRTPLossPct          = 0.1
	DefaultRTPJitterMS         = 30
)

func (t *Thresholds) fill() {
	for _, f := range []struct {
		v   *float64
		def float64
	}{{&t.T38LossPct, DefaultT38LossPct}, {&t.T38UnrecoverablePct, DefaultT38UnrecoverablePct},
		{&t.RTPLossPct, DefaultRTPLossPct}, {&t.RTPJitterMS, DefaultRTPJitterMS}} {
		if *f.v <= 0 {
			*f.v = f.def
		}
	}
}

// Direction is one direction's figures of one attempt's media.
type Direction struct {
	Expected      int     `json:"expected"` // packets the sequence numbers span
	Lost          int     `json:"lost"`     // sequence gaps
	Unrecoverable int     `json:"unrecoverable"`
	JitterMS      float64 `json:"jitter_ms,omitempty"` // RTP only
}

// Sample is what one attempt's media report contributes: its transport and
// both directions (sent, received).
type Sample struct {
	At        time.Time    `json:"at"`
	Transport string       `json:"transport"` // t38|g711
	Dirs      [2]Direction `json:"dirs"`
}

// sampleOf reduces report m to a sample; false when it measured nothing.
func sampleOf(m *job.MediaReport, now time.Time) (Sample, bool) {
	s := Sample{At: now}
	switch {
	case m == nil || m.Unavailable != "" || m.CaptureIncomplete:
		// A capture that missed packets (a flood) would show loss the
		// path did not have: such a report teaches nothing.
		return s, false
	case m.T38 != nil:
		s.Transport = "t38"
		for i, d := range []job.UDPTLDirection{m.T38.Sent, m.T38.Received} {
			s.Dirs[i] = Direction{Expected: d.Packets + d.Gaps, Lost: d.Gaps, Unrecoverable: d.Unrecoverable}
		}
	case m.RTP != nil:
		s.Transport = "g711"
		for i, d := range []job.RTPDirection{m.RTP.Sent, m.RTP.Received} {
			s.Dirs[i] = Direction{Expected: max(d.Expected, d.Packets), Lost: d.Lost, Unrecoverable: d.Lost, JitterMS: d.JitterMS}
		}
	default:
		return s, false
	}
	return s, s.Dirs[0].Expected+s.Dirs[1].Expected > 0
}

func pct(n, of int) float64 {
	if of < MinPackets {
		return 0
	}
	return 100 * float64(n) / float64(of)
}

func fmtPct(p float64) string { return strconv.FormatFloat(p, 'f', -1, 64) }

// round keeps two significant decimals for the decisions people read.
func round(p float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(p, 'g', 2, 64), 64)
	return v
}

// lossy says what makes sample s a lossy path ("3% unrecoverable loss"),
// or "" when it is clean. Each direction is judged on its own: the worse
// one counts.
func (t Thresholds) lossy(s Sample) string {
	var worst, worstLoss, worstJitter float64
	for _, d := range s.Dirs {
		worst = max(worst, pct(d.Unrecoverable, d.Expected))
		worstLoss = max(worstLoss, pct(d.Lost, d.Expected))
		if d.Expected >= MinPackets {
			worstJitter = max(worstJitter, d.JitterMS)
		}
	}
	switch {
	case s.Transport == "t38" && worst >= t.T38UnrecoverablePct:
		return fmtPct(round(worst)) + "% unrecoverable loss"
	case s.Transport == "t38" && worstLoss >= t.T38LossPct:
		return fmtPct(round(worstLoss)) + "% UDPTL loss"
	case s.Transport == "g711" && worstLoss >= t.RTPLossPct:
		return fmtPct(round(worstLoss)) + "% RTP loss"
	case s.Transport == "g711" && worstJitter >= t.RTPJitterMS:
		return fmtPct(round(worstJitter)) + " ms RTP jitter"
	}
	return ""
}

// TrunkHealth is a trunk's pooled figures over its last attempts with a
// media report (per direction, the worse one), and whether they raise its
// alarm.
type TrunkHealth struct {
	Trunk               string   `json:"trunk"`
	Attempts            int      `json:"attempts"`
	T38LossPct          float64  `json:"t38_loss_pct"`
	T38UnrecoverablePct float64  `json:"t38_unrecoverable_pct"`
	RTPLossPct          float64  `json:"rtp_loss_pct"`
	RTPJitterMS         float64  `json:"rtp_jitter_ms"` // mean of the attempts' worse direction
	Alarm               bool     `json:"alarm"`
	Why                 []string `json:"why,omitempty"`
}

// addSampleLocked adds s to trunk's window and saves the windows.
func (b *Book) addSampleLocked(trunk string, s Sample) {
	w := append(b.trunks[trunk], s)
	if len(w) > b.cfg.TrunkWindow {
		w = slices.Clone(w[len(w)-b.cfg.TrunkWindow:])
	}
	before := b.healthLocked(trunk).Alarm
	b.trunks[trunk] = w
	if after := b.healthLocked(trunk); after.Alarm != before {
		if after.Alarm {
			b.cfg.Log.Warn("health: trunk media alarm raised", "trunk", trunk, "why", strings.Join(after.Why, "; "))
		} else {
			b.cfg.Log.Info("health: trunk media alarm cleared", "trunk", trunk)
		}
	}
	if err := b.st.PutState(TrunkStateKey, b.trunks); err != nil {
		b.cfg.Log.Error("health: the trunks' records were not saved", "err", err, "trunk", trunk)
	}
}

// healthLocked pools trunk's window.
func (b *Book) healthLocked(trunk string) TrunkHealth {
	h := TrunkHealth{Trunk: trunk, Attempts: len(b.trunks[trunk])}
	var t38, rtp [2]Direction
	var jitter float64
	var jn int
	for _, s := range b.trunks[trunk] {
		acc := &t38
		if s.Transport == "g711" {
			acc = &rtp
		}
		var worst float64
		for i, d := range s.Dirs {
			acc[i].Expected += d.Expected
			acc[i].Lost += d.Lost
			acc[i].Unrecoverable += d.Unrecoverable
			if d.Expected >= MinPackets {
				worst = max(worst, d.JitterMS)
			}
		}
		if s.Transport == "g711" {
			jitter += worst
			jn++
		}
	}
	for i := range 2 {
		h.T38LossPct = max(h.T38LossPct, pct(t38[i].Lost, t38[i].Expected))
		h.T38UnrecoverablePct = max(h.T38UnrecoverablePct, pct(t38[i].Unrecoverable, t38[i].Expected))
		h.RTPLossPct = max(h.RTPLossPct, pct(rtp[i].Lost, rtp[i].Expected))
	}
	if jn > 0 {
		h.RTPJitterMS = jitter / float64(jn)
	}
	t := b.cfg.Thresholds
	for _, c := range []struct {
		v, limit float64
		unit     string
	}{{h.T38LossPct, t.T38LossPct, "% UDPTL loss"}, {h.T38UnrecoverablePct, t.T38UnrecoverablePct, "% unrecoverable UDPTL gaps"},
		{h.RTPLossPct, t.RTPLossPct, "% RTP loss"}, {h.RTPJitterMS, t.RTPJitterMS, " ms RTP jitter"}} {
		if c.v >= c.limit {
			h.Alarm = true
			h.Why = append(h.Why, fmt.Sprintf("%s%s (threshold %s)", fmtPct(round(c.v)), c.unit, fmtPct(c.limit)))
		}
	}
	return h
}

// Trunks returns every trunk's health, by name.
func (b *Book) Trunks() []TrunkHealth {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]TrunkHealth, 0, len(b.trunks))
	for name := range b.trunks {
		out = append(out, b.healthLocked(name))
	}
	slices.SortFunc(out, func(x, y TrunkHealth) int { return strings.Compare(x.Trunk, y.Trunk) })
	return out
}

// Alarm reports whether any trunk is in alarm.
func (b *Book) Alarm() bool {
	for _, h := range b.Trunks() {
		if h.Alarm {
			return true
		}
	}
	return false
}

// Counts returns how many destinations go G.711 first now and how many
// have a lossy record.
func (b *Book) Counts(now time.Time) (avoidT38, lossy int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range b.recs {
		if !r.T38FailedAt.IsZero() && now.Before(r.T38FailedAt.Add(b.cfg.RetryT38After)) {
			avoidT38++
		}
		if !r.LossyAt.IsZero() {
			lossy++
		}
	}
	return avoidT38, lossy
}

// WriteMetrics writes the trunks' figures and the destinations' counts in
// the Prometheus text format (ratios 0..1, jitter in seconds).
func (b *Book) WriteMetrics(w io.Writer, now time.Time) {
	trunks := b.Trunks()
	for _, m := range []struct {
		name, help string
		v          func(TrunkHealth) float64
	}{
		{"faxbox_media_alarm", "Whether the trunk's fax media health is in alarm.", func(h TrunkHealth) float64 { return b2f(h.Alarm) }},
		{"faxbox_media_attempts", "Attempts with a media report pooled for the trunk's figures.", func(h TrunkHealth) float64 { return float64(h.Attempts) }},
		{"faxbox_media_t38_loss_ratio", "UDPTL sequence gaps per expected packet (worse direction).", func(h TrunkHealth) float64 { return h.T38LossPct / 100 }},
		{"faxbox_media_t38_unrecoverable_ratio", "UDPTL gaps neither redundancy nor FEC repaired, per expected packet (worse direction).", func(h TrunkHealth) float64 { return h.T38UnrecoverablePct / 100 }},
		{"faxbox_media_rtp_loss_ratio", "RTP packets lost per expected packet (worse direction).", func(h TrunkHealth) float64 { return h.RTPLossPct / 100 }},
		{"faxbox_media_rtp_jitter_seconds", "Mean RTP interarrival jitter (RFC 3550) of the G.711 attempts.", func(h TrunkHealth) float64 { return h.RTPJitterMS / 1000 }},
	} {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n", m.name, m.help, m.name)
		for _, h := range trunks {
			fmt.Fprintf(w, "%s{trunk=%q} %s\n", m.name, h.Trunk, strconv.FormatFloat(m.v(h), 'g', -1, 64))
		}
	}
	avoid, lossy := b.Counts(now)
	fmt.Fprintf(w, "# HELP faxbox_media_destinations_g711_first Destinations sent G.711 first after a failed T.38 negotiation.\n# TYPE faxbox_media_destinations_g711_first gauge\nfaxbox_media_destinations_g711_first %d\n", avoid)
	fmt.Fprintf(w, "# HELP faxbox_media_destinations_lossy Destinations sent with ECM on and a lower rate after a lossy path.\n# TYPE faxbox_media_destinations_lossy gauge\nfaxbox_media_destinations_lossy %d\n", lossy)
}

func b2f(v bool) float64 {
	if v {
		return 1
	}
	return 0
}
