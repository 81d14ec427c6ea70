package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/selftest"
)

// qualifyBox answers the qualification endpoints: running for the first
// two looks, then end.
func qualifyBox(t *testing.T, f *fakeBox, end selftest.Run) *string {
	var mu sync.Mutex
	looks, body := 0, new(string)
	f.handle(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/trunks/trunk/qualify" {
			writeJSON(w, 404, map[string]any{"error": map[string]string{"code": "not_found", "message": "no SIP trunk of that name"}})
			return
		}
		run := selftest.Run{Kind: selftest.KindQualify, Status: selftest.Running, Trunk: "trunk", To: end.To, JobID: "fx_1"}
		mu.Lock()
		defer mu.Unlock()
		if r.Method == http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			*body = string(b)
			writeJSON(w, http.StatusAccepted, run)
			return
		}
		if looks++; looks > 2 {
			run = end
		}
		writeJSON(w, 200, run)
	}))
	return body
}

func TestQualifyCommand(t *testing.T) {
	now := time.Now()
	q := selftest.Score(&job.Attempt{EndedAt: &now, Media: &job.MediaReport{Transport: "t38", T38: &job.T38Report{
		Sent: job.UDPTLDirection{Packets: 950, Gaps: 50, Recovered: 50, LongestBurst: 2, RedundancyDepth: 3, LargestDatagram: 200}}}}, 0)
	passed := selftest.Run{Kind: selftest.KindQualify, Status: selftest.Passed, Trunk: "trunk", To: "100", JobID: "fx_1", Qualification: &q}
	f := newFakeBox(t)
	body := qualifyBox(t, f, passed)
	code, out, errs := run(t, f, nil, "qualify", "-to", "100")
	if code != ExitOK || *body != `{"number":"100"}` {
		t.Fatalf("exit %d, body %q, stderr %s", code, *body, errs)
	}
	for _, want := range []string{"trunk trunk to 100: passed", "score 80 (fair) over t38", "loss 5.00% (recovered 5.00%", "recommended: transport t38, redundancy depth 3", "T38FaxMaxDatagram 240"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	failed := selftest.Run{Kind: selftest.KindQualify, Status: selftest.Failed, Trunk: "trunk", To: "555", Error: job.NewError(failure.LineBusy, "BUSY"),
		Qualification: &selftest.Qualification{Grade: selftest.GradeFailed, Findings: []string{"the fax was not delivered"}}}
	f = newFakeBox(t)
	body = qualifyBox(t, f, failed)
	code, out, _ = run(t, f, nil, "qualify", "-json")
	var got selftest.Run
	if code != ExitFailed || *body != "" || json.Unmarshal([]byte(out), &got) != nil || got.Error.Code != failure.LineBusy {
		t.Fatalf("failed run: exit %d, body %q, out %s", code, *body, out)
	}

	code, _, errs = run(t, f, nil, "qualify", "-trunk", "nope")
	if code != ExitRefused || !strings.Contains(errs, "not_found") {
		t.Fatalf("unknown trunk: exit %d, %s", code, errs)
	}
	if code, _, _ := run(t, f, nil, "qualify", "extra"); code != ExitUsage {
		t.Fatalf("an operand: exit %d", code)
	}
}
