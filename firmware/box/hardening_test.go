package box

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/internal/testkit"
)

// A line index that strconv.Atoi accepts but that is not the line's one
// text form ("01", "+1") is refused before anything changes; the panic it
// caused in SetLineBusy is gone, and /v1/lines and the scheduler agree.
func TestLineBusyRefusesOtherSpellings(t *testing.T) {
	e := startBox(t, nil)
	for _, n := range []string{"01", "+1", "0", "-1", "1x", "99"} {
		resp := e.c.Do(t, http.MethodPost, "/v1/lines/test/"+n+"/busy", nil, "", nil)
		want := http.StatusBadRequest
		if n == "99" {
			want = http.StatusNotFound
		}
		if resp.StatusCode != want {
			t.Errorf("POST /v1/lines/test/%s/busy: %d, want %d", n, resp.StatusCode, want)
		}
	}
	var lines struct{ Lines []struct{ State string } }
	e.c.Do(t, http.MethodGet, "/v1/lines", nil, "", &lines)
	for i, l := range lines.Lines {
		if l.State != "idle" {
			t.Fatalf("line %d is %q after refused requests, want idle", i+1, l.State)
		}
	}
	// The scheduler agrees: a fax still goes out on line 1.
	var j job.Job
	if r := e.c.Submit(t, "/v1/faxes", &j, testkit.Field("to", "99990001"), testkit.File("file", "a.pdf", testkit.PDF(t, 1))); r.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %d", r.StatusCode)
	}
	got := e.waitStatus(t, j.ID, job.Delivered, 30*time.Second)
	if got.LastAttempt().Line.String() != "test/1" {
		t.Fatalf("delivered on %s, want test/1", got.LastAttempt().Line)
	}
	// The one true spelling works.
	if r := e.c.Do(t, http.MethodPost, "/v1/lines/test/1/busy", nil, "", &lines); r.StatusCode != http.StatusOK || lines.Lines[0].State != "busied_out" {
		t.Fatalf("POST /v1/lines/test/1/busy: %d %s", r.StatusCode, fmt.Sprint(lines.Lines))
	}
}
