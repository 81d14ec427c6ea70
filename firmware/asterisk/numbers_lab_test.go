//go:build lab

package asterisk_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/ami"
	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/tools/lab"
)

// TestLabLimitedNumbers: the remote's 107 is a fax server that takes 4
// calls at once and 108 a one-line machine. Five faxes dialled to 107 at
// the same moment: four are received over T.38, all four in a call at the
// same time, and the fifth is answered busy; two to 108: one received, one
// busy; once that call is over, 108 receives again. The faxes are dialled
// straight through the box's Asterisk dialler, beside the scheduler (which
// would not put one number on two lines).
func TestLabLimitedNumbers(t *testing.T) {
	l, cfg, tif := directLab(t, "numbers", 36060)
	a := cfg.Asterisk
	client, err := ami.Dial(context.Background(), ami.Config{Addr: a.AMIAddr, Username: a.AMIUser, Secret: a.AMISecret})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sink := resultSink{ch: make(chan dialler.Result, 16)}
	d := directDialler(t, cfg, client, sink)
	dial := func(number string, n int, tag string) {
		t.Helper()
		for i := range n {
			err := d.Dial(context.Background(), dialler.Request{AttemptID: fmt.Sprintf("at_%s_%s_%d", number, tag, i), JobID: "fx_" + number + "_" + tag,
				To: number, Line: job.LineAt(lab.TrunkName, 0),
				Fax: &dialler.FaxSpec{TIFF: tif, FirstPage: 1, Pages: 1, TotalPages: 1, StationID: "FAXBOX LAB", ECM: true, T38: true}})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	dial("107", 5, "a")
	dial("108", 2, "a")
	got := collect(t, sink, 7)
	checkLimited(t, l, got, "107", 4, 1)
	checkLimited(t, l, got, "108", 1, 1)

	// 108's call is over: it receives again.
	dial("108", 1, "b")
	again := collect(t, sink, 1)
	checkLimited(t, l, again, "108", 1, 0)
	if n := len(l.ReceivedFiles("108")); n != 2 {
		t.Errorf("108 received %d faxes in all, want 2", n)
	}
}

// collect waits for n results and groups them by the number dialled (the
// attempt id's second part).
func collect(t *testing.T, sink resultSink, n int) map[string][]dialler.Result {
	t.Helper()
	got := map[string][]dialler.Result{}
	deadline := time.After(4 * time.Minute)
	for range n {
		select {
		case r := <-sink.ch:
			number := strings.Split(r.AttemptID, "_")[1]
			got[number] = append(got[number], r)
		case <-deadline:
			t.Fatalf("results so far: %+v; want %d", got, n)
		}
	}
	return got
}

// checkLimited checks number's results: ok delivered over T.38, all of them
// in a call at the same moment, and busy answered busy (line.busy, never
// answered).
func checkLimited(t *testing.T, l *lab.Lab, got map[string][]dialler.Result, number string, ok, busy int) {
	t.Helper()
	var delivered []dialler.Result
	nbusy := 0
	for _, r := range got[number] {
		switch {
		case r.OK() && r.PagesSent == 1 && r.Transport == "t38":
			delivered = append(delivered, r)
		case r.Code == failure.LineBusy && !r.Answered:
			nbusy++
		default:
			t.Errorf("%s: unexpected result %+v", number, r)
		}
	}
	if len(delivered) != ok || nbusy != busy {
		t.Errorf("%s: %d delivered over T.38 and %d busy, want %d and %d: %+v", number, len(delivered), nbusy, ok, busy, got[number])
	}
	if m := maxOverlap(delivered); m != len(delivered) {
		t.Errorf("%s: at most %d of the %d delivered faxes were in a call at once, want all", number, m, len(delivered))
	}
}

// maxOverlap is the largest number of results whose calls (answer to end)
// were up at one moment.
func maxOverlap(rs []dialler.Result) int {
	type edge struct {
		at    time.Time
		delta int
	}
	var es []edge
	for _, r := range rs {
		es = append(es, edge{r.AnsweredAt, 1}, edge{r.EndedAt, -1})
	}
	sort.Slice(es, func(i, j int) bool {
		if es[i].at.Equal(es[j].at) {
			return es[i].delta < es[j].delta
		}
		return es[i].at.Before(es[j].at)
	})
	n, top := 0, 0
	for _, e := range es {
		n += e.delta
		top = max(top, n)
	}
	return top
}
