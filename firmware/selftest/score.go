package selftest

import (
	"cmp"
	"fmt"
	"math"

	"github.com/faxbox/faxbox/firmware/job"
)

// Published figures the score starts from: T.38 with redundancy survives
// up to about 10% packet loss; G.711 fax needs loss under 0.1% and jitter
// under 30 ms.
const (
	T38LossLimitPct  = 10.0
	G711LossLimitPct = 0.1
	JitterLimitMS    = 30.0
	// MaxRedundancy is the deepest UDPTL redundancy Asterisk sends
	// (udptl.conf udptlfecentries, at most 5).
	MaxRedundancy = 5
	// MaxDatagramCeiling keeps a UDPTL datagram, with its IP and UDP
	// headers, inside a 1500-octet Ethernet frame without fragments.
	MaxDatagramCeiling = 1400
	// DefaultMaxDatagram is the T38FaxMaxDatagram the box's endpoints are
	// rendered with (pjsip.conf t38_udptl_maxdatagram).
	DefaultMaxDatagram = 400
)

// Grades of a path.
const (
	GradeGood       = "good"       // score 90 and more
	GradeFair       = "fair"       // 70 to 89
	GradePoor       = "poor"       // under 70
	GradeFailed     = "failed"     // the fax was not delivered
	GradeUnmeasured = "unmeasured" // delivered, but no media report
)

// Qualification is a fax path's score from one attempt's media report,
// with recommended UDPTL settings.
type Qualification struct {
	// Score: 0 (unusable) to 100 (no loss, no jitter); see Score.
	Score     int    `json:"score"`
	Grade     string `json:"grade"`
	Transport string `json:"transport,omitempty"` // t38|g711
	// LossPct: packets lost on the path (sequence gaps, both directions)
	// in percent of those sent; RecoveredPct and UnrecoverablePct split
	// the UDPTL gaps into those redundancy/FEC repaired and the others.
	LossPct          float64 `json:"loss_pct"`
	RecoveredPct     float64 `json:"recovered_pct"`
	UnrecoverablePct float64 `json:"unrecoverable_pct"`
	LongestBurst     int     `json:"longest_burst"`
	RedundancyDepth  int     `json:"redundancy_depth"` // seen on the path
	JitterMS         float64 `json:"jitter_ms"`
	LargestDatagram  int     `json:"largest_datagram"`
	// Recommended settings for this path.
	Recommend Recommendation `json:"recommend"`
	// Findings say what lowered the score, in words.
	Findings []string `json:"findings"`
}

// Recommendation is what to configure for the path.
type Recommendation struct {
	// RedundancyDepth: secondary IFPs per UDPTL datagram (udptl.conf
	// udptlfecentries with t38_udptl_ec = redundancy); 0: no advice.
	RedundancyDepth int `json:"redundancy_depth"`
	// T38FaxMaxDatagram: the datagram size to negotiate (pjsip.conf
	// t38_udptl_maxdatagram); 0: no advice.
	T38FaxMaxDatagram int `json:"t38_max_datagram"`
	// Transport: "t38" or "g711", what the path should carry faxes as.
	Transport string `json:"transport,omitempty"`
}

// Score rates the path of attempt a (its media report); maxDatagram (0:
// DefaultMaxDatagram) is the negotiated T38FaxMaxDatagram of a UDPTL
// direction whose report has none (no SDP seen). The rules:
//
//   - not delivered: 0, failed; delivered without a media report (no
//     capture, not an IP line): 100, unmeasured.
//   - T.38: from 100, minus 4 per percent of packets lost, minus 25 per
//     percent unrecoverable, minus 15 when a burst was longer than the
//     redundancy depth, minus 10 when a datagram was larger than its
//     direction's negotiated T38FaxMaxDatagram, minus 1 per millisecond of page jitter over 30.
//     Recommended depth: the longest burst plus one (1 on a clean path),
//     at most 5; recommended T38FaxMaxDatagram: the largest datagram seen,
//     scaled from the depth seen to the one recommended, 20% headroom,
//     at least the largest seen, rounded up to 16 octets, at most 1400.
//   - G.711: from 100, minus 300 per percent lost (0.1% costs 30), minus
//     2 per millisecond of jitter over 30; T.38 is recommended when loss
//     or jitter pass the published limits.
//
// Grades: good from 90, fair from 70, poor below.
func Score(a *job.Attempt, maxDatagram int) Qualification {
	if maxDatagram <= 0 {
		maxDatagram = DefaultMaxDatagram
	}
	q := Qualification{Findings: []string{}}
	switch {
	case a == nil || a.Error != nil || a.EndedAt == nil:
		q.Grade = GradeFailed
		q.Findings = append(q.Findings, "the fax was not delivered")
		if a != nil && a.Error != nil {
			q.Findings = append(q.Findings, fmt.Sprintf("%s (%s)", a.Error.Message, a.Error.Code))
		}
		return q
	case a.Media == nil || a.Media.Unavailable != "":
		q.Score, q.Grade = 100, GradeUnmeasured
		why := "no media report"
		if a.Media != nil {
			why = a.Media.Unavailable
		}
		q.Findings = append(q.Findings, "delivered, but the path could not be measured: "+why)
		return q
	case a.Media.T38 != nil:
		q.scoreT38(a.Media.T38, maxDatagram)
	case a.Media.RTP != nil:
		q.scoreRTP(a.Media.RTP)
		if a.Transport == "t38" {
			q.Findings = append(q.Findings, "the fax went over T.38, but no UDPTL stream was tied to the call: scored from its audio only")
		}
	default:
		q.Score, q.Grade = 100, GradeUnmeasured
		q.Findings = append(q.Findings, "delivered, but no media packets were seen")
		return q
	}
	q.Score = max(0, min(100, q.Score))
	q.Grade = grade(q.Score)
	return q
}

func grade(s int) string {
	switch {
	case s >= 90:
		return GradeGood
	case s >= 70:
		return GradeFair
	}
	return GradePoor
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

func (q *Qualification) scoreT38(r *job.T38Report, maxDatagram int) {
	q.Transport = "t38"
	var sent, gaps, recovered, unrec int
	over := ""
	for _, d := range []job.UDPTLDirection{r.Sent, r.Received} {
		// The direction's own negotiated limit when its SDP was seen.
		if limit := cmp.Or(d.MaxDatagram, maxDatagram); d.LargestDatagram > limit && over == "" {
			over = fmt.Sprintf("a %d-octet datagram from %s, over the negotiated T38FaxMaxDatagram %d", d.LargestDatagram, d.From, limit)
		}
		sent += d.Packets + d.Gaps
		gaps += d.Gaps
		recovered += d.Recovered
		unrec += d.Unrecoverable
		q.LongestBurst = max(q.LongestBurst, d.LongestBurst)
		q.RedundancyDepth = max(q.RedundancyDepth, d.RedundancyDepth)
		q.LargestDatagram = max(q.LargestDatagram, d.LargestDatagram)
		q.JitterMS = max(q.JitterMS, d.PageJitterMS)
	}
	if sent > 0 {
		q.LossPct = round2(100 * float64(gaps) / float64(sent))
		q.RecoveredPct = round2(100 * float64(recovered) / float64(sent))
		q.UnrecoverablePct = round2(100 * float64(unrec) / float64(sent))
	}
	score := 100.0 - 4*q.LossPct - 25*q.UnrecoverablePct
	if q.LossPct > 0 {
		q.Findings = append(q.Findings, fmt.Sprintf("%.2f%% of UDPTL packets lost (%d), %d recovered from redundancy/FEC, %d not", q.LossPct, gaps, recovered, unrec))
	}
	if q.LossPct > T38LossLimitPct {
		q.Findings = append(q.Findings, fmt.Sprintf("loss over %.0f%%: more than T.38 with redundancy survives", T38LossLimitPct))
	}
	if q.LongestBurst > q.RedundancyDepth {
		score -= 15
		q.Findings = append(q.Findings, fmt.Sprintf("a burst of %d lost packets, longer than the redundancy depth %d", q.LongestBurst, q.RedundancyDepth))
	}
	if over != "" {
		score -= 10
		q.Findings = append(q.Findings, over)
	}
	if q.JitterMS > JitterLimitMS {
		score -= q.JitterMS - JitterLimitMS
		q.Findings = append(q.Findings, fmt.Sprintf("page data jitter %.1f ms (over %.0f ms)", q.JitterMS, JitterLimitMS))
	}
	q.Score = int(math.Round(score))
	depth := min(q.LongestBurst+1, MaxRedundancy)
	if q.LongestBurst+1 > MaxRedundancy {
		q.Findings = append(q.Findings, fmt.Sprintf("bursts of %d exceed the deepest redundancy (%d): the path itself needs fixing", q.LongestBurst, MaxRedundancy))
	}
	q.Recommend = Recommendation{Transport: "t38", RedundancyDepth: depth, T38FaxMaxDatagram: datagramFor(q.LargestDatagram, q.RedundancyDepth, depth)}
}

// datagramFor scales the largest datagram seen at depth seenDepth to depth
// want, with 20% headroom, never below what was seen, rounded up to 16
// octets, at most MaxDatagramCeiling; 0 when nothing was seen.
func datagramFor(largest, seenDepth, want int) int {
	if largest <= 0 {
		return 0
	}
	need := max(float64(largest)*float64(want+1)/float64(seenDepth+1)*1.2, float64(largest))
	return min(int(math.Ceil(need/16))*16, MaxDatagramCeiling)
}

func (q *Qualification) scoreRTP(r *job.RTPReport) {
	q.Transport = "g711"
	var expected, lost int
	for _, d := range []job.RTPDirection{r.Sent, r.Received} {
		expected += d.Expected
		lost += d.Lost
		q.JitterMS = max(q.JitterMS, d.MaxJitterMS)
	}
	if expected > 0 {
		q.LossPct = round2(100 * float64(lost) / float64(expected))
		q.UnrecoverablePct = q.LossPct // G.711 has no redundancy
	}
	score := 100.0 - 300*q.LossPct
	if q.JitterMS > JitterLimitMS {
		score -= 2 * (q.JitterMS - JitterLimitMS)
	}
	q.Score = int(math.Round(score))
	q.Recommend.Transport = "g711"
	if q.LossPct >= G711LossLimitPct || q.JitterMS >= JitterLimitMS {
		q.Findings = append(q.Findings, fmt.Sprintf("G.711 fax needs loss under %.1f%% and jitter under %.0f ms; seen %.2f%% and %.1f ms: use T.38 with redundancy",
			G711LossLimitPct, JitterLimitMS, q.LossPct, q.JitterMS))
		q.Recommend = Recommendation{Transport: "t38", RedundancyDepth: 3, T38FaxMaxDatagram: DefaultMaxDatagram}
	}
}
