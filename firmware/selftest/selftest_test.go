package selftest

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
)

func TestNumberIsStableDigitsAndKeyed(t *testing.T) {
	a, b := Number("secret-one"), Number("secret-two")
	if !regexp.MustCompile(`^7[0-9]{11}$`).MatchString(a) || a != Number("secret-one") {
		t.Fatalf("Number = %q (again %q)", a, Number("secret-one"))
	}
	if a == b {
		t.Fatalf("two secrets give one number %s", a)
	}
}

func TestHost(t *testing.T) {
	for in, want := range map[string]string{"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "192.0.2.7": "192.0.2.7", "::": "[::1]", "2001:db8::1": "[2001:db8::1]"} {
		if got := Host(in); got != want {
			t.Errorf("Host(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRunFinishAndPages(t *testing.T) {
	now := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	delivered := &job.Job{Status: job.Delivered, Pages: 2, Attempts: []job.Attempt{{ID: "att_1", PagesSent: 2, FirstPage: 1}}}
	for _, c := range []struct {
		name     string
		received int
		err      error
		want     Status
		code     failure.Code
	}{
		{"equal", 2, nil, Passed, ""},
		{"fewer", 1, nil, Failed, CodePagesMismatch},
		{"none", 0, errors.New("open: no such file"), Failed, CodeNoReception},
	} {
		r := &Run{Kind: KindSelfTest, Status: Running}
		r.Finish(delivered, now)
		r.CheckPages(c.received, c.err)
		if r.Status != c.want || (c.code != "" && (r.Error == nil || r.Error.Code != c.code)) || r.EndedAt == nil || r.Attempt == nil {
			t.Errorf("%s: %+v", c.name, r)
		}
	}
	failed := &job.Job{Status: job.Failed, Pages: 2, Error: job.NewError(failure.LineBusy, "BUSY")}
	r := &Run{Kind: KindSelfTest, Status: Running}
	r.Finish(failed, now)
	r.CheckPages(2, nil) // a failed run stays failed
	if r.Status != Failed || r.Error.Code != failure.LineBusy || r.Summary() != "failed line.busy" {
		t.Fatalf("failed run: %+v (%s)", r, r.Summary())
	}
	var none *Run
	if none.Summary() != "never run" {
		t.Fatal(none.Summary())
	}
}

func delivered(m *job.MediaReport) *job.Attempt {
	end := time.Now()
	return &job.Attempt{EndedAt: &end, PagesSent: 1, Media: m}
}

func t38(sent, recv job.UDPTLDirection) *job.MediaReport {
	return &job.MediaReport{Transport: "t38", T38: &job.T38Report{Sent: sent, Received: recv}}
}

func TestScoreT38(t *testing.T) {
	clean := Score(delivered(t38(
		job.UDPTLDirection{Packets: 900, RedundancyDepth: 3, LargestDatagram: 120, PageJitterMS: 2},
		job.UDPTLDirection{Packets: 100, RedundancyDepth: 3, LargestDatagram: 60})), 0)
	if clean.Score != 100 || clean.Grade != GradeGood || clean.LossPct != 0 || clean.Recommend.RedundancyDepth != 1 {
		t.Fatalf("clean path: %+v", clean)
	}
	// 120 octets at depth 3: ~30 per IFP; depth 1 → 60, +20% → 72; at
	// least the 120 seen, rounded up to 128.
	if clean.Recommend.T38FaxMaxDatagram != 128 {
		t.Fatalf("clean path datagram: %+v", clean.Recommend)
	}
	// 5% loss, all recovered, bursts of 2 under depth 3.
	lossy := Score(delivered(t38(
		job.UDPTLDirection{Packets: 950, Gaps: 50, Recovered: 50, LongestBurst: 2, RedundancyDepth: 3, LargestDatagram: 200},
		job.UDPTLDirection{Packets: 100, RedundancyDepth: 3, LargestDatagram: 60})), 400)
	if lossy.LossPct != 4.55 || lossy.UnrecoverablePct != 0 || lossy.Score != 82 || lossy.Grade != GradeFair || lossy.Recommend.RedundancyDepth != 3 {
		t.Fatalf("lossy path: %+v", lossy)
	}
	// Unrecoverable bursts longer than the depth, a datagram over the limit.
	bad := Score(delivered(t38(
		job.UDPTLDirection{Packets: 800, Gaps: 200, Recovered: 150, Unrecoverable: 50, LongestBurst: 9, RedundancyDepth: 2, LargestDatagram: 500, PageJitterMS: 45},
		job.UDPTLDirection{})), 400)
	if bad.Grade != GradePoor || bad.Score != 0 || bad.Recommend.RedundancyDepth != MaxRedundancy || bad.Recommend.T38FaxMaxDatagram != 1200 { // 500/3 per IFP, ×6, +20%
		t.Fatalf("bad path: %+v", bad)
	}
	if j := strings.Join(bad.Findings, "\n"); !strings.Contains(j, "burst of 9") || !strings.Contains(j, "500-octet") || !strings.Contains(j, "jitter 45.0") {
		t.Fatalf("bad path findings: %s", j)
	}
}

// TestScoreNegotiatedDatagram: a direction is held against its own
// negotiated T38FaxMaxDatagram when its SDP was seen, else the box's.
func TestScoreNegotiatedDatagram(t *testing.T) {
	// The far end declared 160: the box's 200-octet datagrams are over it,
	// though under the box's own 400.
	q := Score(delivered(t38(
		job.UDPTLDirection{From: "127.0.0.1:4002", Packets: 900, RedundancyDepth: 3, LargestDatagram: 200, MaxDatagram: 160},
		job.UDPTLDirection{Packets: 100, RedundancyDepth: 3, LargestDatagram: 60, MaxDatagram: 400})), 400)
	if q.Score != 90 || len(q.Findings) != 1 || !strings.Contains(q.Findings[0], "200-octet datagram from 127.0.0.1:4002, over the negotiated T38FaxMaxDatagram 160") {
		t.Fatalf("over the far end's limit: %+v", q)
	}
	// The far end declared 1400: 500 octets pass, though over the box's 400.
	q = Score(delivered(t38(
		job.UDPTLDirection{Packets: 900, RedundancyDepth: 3, LargestDatagram: 500, MaxDatagram: 1400},
		job.UDPTLDirection{Packets: 100, RedundancyDepth: 3, LargestDatagram: 60})), 400)
	if q.Score != 100 || len(q.Findings) != 0 {
		t.Fatalf("under the far end's limit: %+v", q)
	}
}

func TestScoreG711AndUnmeasured(t *testing.T) {
	rtp := func(lost int, jitter float64) *job.MediaReport {
		return &job.MediaReport{Transport: "g711", RTP: &job.RTPReport{
			Sent:     job.RTPDirection{Packets: 5000, Expected: 5000},
			Received: job.RTPDirection{Packets: 5000 - lost, Expected: 5000, Lost: lost, MaxJitterMS: jitter}}}
	}
	if q := Score(delivered(rtp(0, 5)), 0); q.Score != 100 || q.Recommend.Transport != "g711" || len(q.Findings) != 0 {
		t.Fatalf("clean G.711: %+v", q)
	}
	a := delivered(rtp(0, 5))
	a.Transport = "t38" // Asterisk says T.38, the capture saw no UDPTL
	if q := Score(a, 0); len(q.Findings) != 1 || !strings.Contains(q.Findings[0], "no UDPTL stream") {
		t.Fatalf("T.38 without UDPTL: %+v", q)
	}
	if q := Score(delivered(rtp(50, 40)), 0); q.LossPct != 0.5 || q.Grade != GradePoor || q.Recommend.Transport != "t38" || q.Recommend.RedundancyDepth == 0 {
		t.Fatalf("lossy G.711: %+v", q)
	}
	if q := Score(delivered(&job.MediaReport{Unavailable: "no CAP_NET_RAW"}), 0); q.Grade != GradeUnmeasured || !strings.Contains(q.Findings[0], "CAP_NET_RAW") {
		t.Fatalf("unmeasured: %+v", q)
	}
	failed := &job.Attempt{Error: job.NewError(failure.LineBusy, "")}
	if q := Score(failed, 0); q.Grade != GradeFailed || q.Score != 0 {
		t.Fatalf("failed: %+v", q)
	}
}
