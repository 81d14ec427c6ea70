package media

import (
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/media/capture"
	"github.com/faxbox/faxbox/firmware/media/udptl"
)

// TestTrackerLoopback: a call through the box back to itself (the
// self-test) has both ends' UDPTL ports in the box's range. The report is
// the sending end's: Sent is the page data, Received the receiver's
// answers, whichever end's first datagram came nearer the switch; a
// trunk call's stream that began right at the switch is not taken.
func TestTrackerLoopback(t *testing.T) {
	for _, senderFirst := range []bool{true, false} {
		flow := func(src, dst string, first time.Time, packets int) capture.FlowSnapshot {
			return capture.FlowSnapshot{Key: capture.FlowKey{Src: ap(src), Dst: ap(dst)}, Kind: capture.KindUDPTL, First: first,
				Last: first.Add(20 * time.Second), Packets: packets, UDPTL: udptl.Stats{Packets: packets, RedundancyDepth: 3}}
		}
		sendAt, recvAt := t0.Add(3020*time.Millisecond), t0.Add(3010*time.Millisecond)
		if senderFirst {
			sendAt, recvAt = recvAt, sendAt
		}
		src := fakeSource{
			flow("127.0.0.1:4101", "127.0.0.1:4102", sendAt, 300), // the sender's page data
			flow("127.0.0.1:4102", "127.0.0.1:4101", recvAt, 40),  // the receiver's answers
		}
		src = append(src, pair(capture.KindRTP, "127.0.0.1:10002", "127.0.0.1:10004", t0, t0.Add(3*time.Second), 150)...)
		// a trunk call (its far end on the same host, another range)
		// switching at the same moment is not the loop's
		src = append(src, pair(capture.KindUDPTL, "127.0.0.1:4200", "127.0.0.1:30000", t0.Add(3*time.Second), t0.Add(20*time.Second), 77)...)
		tr := New(cfg, src, "")
		tr.Handle(event("Event", "UserEvent", "UserEvent", "FaxboxMedia", "Uniqueid", "u1", "Attempt", "at_1",
			"RTPLocal", "127.0.0.1:10002", "RTPRemote", "127.0.0.1:10004", "Timestamp", stamp(t0.Add(100*time.Millisecond))))
		tr.Handle(event("Event", "FAXStatus", "Uniqueid", "u1", "Status", "T.38 Negotiated", "Timestamp", stamp(t0.Add(3*time.Second))))
		r := tr.Report(dialler.Result{AttemptID: "at_1", Answered: true, Transport: "t38", EndedAt: t0.Add(30 * time.Second)})
		if r == nil || r.T38 == nil || r.T38.Sent.From != "127.0.0.1:4101" || r.T38.Sent.Packets != 300 ||
			r.T38.Received.From != "127.0.0.1:4102" || r.T38.Received.Packets != 40 {
			t.Fatalf("sender first %t: %+v", senderFirst, r)
		}
	}
}
