package cli

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/faxbox/faxbox/firmware/directory"
	"github.com/faxbox/faxbox/firmware/job"
)

// TestSendToName: send -to NAME asks the box's directory and sends to the
// one fax number the name names; an ambiguous name lists its candidates
// and sends nothing (exit 65), as does an unknown one; a number is never
// looked up.
func TestSendToName(t *testing.T) {
	f := newFakeBox(t)
	a := tempFile(t, "a.txt", "x")
	book := []directory.Entry{
		{DN: "o=Müller GmbH", Name: "Müller GmbH", Faxes: []string{"04077771"}},
		{DN: "o=Müller AG", Name: "Müller AG", Faxes: []string{"0898888"}},
		{DN: "uid=bob", Name: "Bob Brandt", Phones: []string{"0302222"}},
	}
	var mu sync.Mutex
	var sent, asked []string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/directory", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query().Get("q")
		mu.Lock()
		asked = append(asked, q)
		mu.Unlock()
		var out []directory.Entry
		for _, e := range book {
			if strings.Contains(strings.ToLower(e.Name), strings.ToLower(q)) {
				out = append(out, e)
			}
		}
		writeJSON(w, 200, map[string]any{"entries": out})
	})
	mux.HandleFunc("POST /v1/faxes", func(w http.ResponseWriter, r *http.Request) {
		to := r.FormValue("to")
		mu.Lock()
		sent = append(sent, to)
		mu.Unlock()
		writeJSON(w, 202, job.Job{ID: "fax_1", To: to, Status: job.Queued})
	})
	f.handle(mux)

	if code, out, errs := run(t, f, nil, "send", "-to", "müller gmbh", a); code != ExitOK || strings.TrimSpace(out) != "fax_1" ||
		!strings.Contains(errs, "fax number 04077771") {
		t.Errorf("send -to 'müller gmbh': exit %d %q %q", code, out, errs)
	}
	code, _, errs := run(t, f, nil, "send", "-to", "Müller", a)
	if code != ExitRefused || !strings.Contains(errs, "04077771") || !strings.Contains(errs, "0898888") || !strings.Contains(errs, "Müller AG") {
		t.Errorf("send -to Müller: exit %d %q", code, errs)
	}
	if code, _, errs := run(t, f, nil, "send", "-to", "Bob", a); code != ExitRefused || !strings.Contains(errs, "no fax number") {
		t.Errorf("send -to Bob (no fax number): exit %d %q", code, errs)
	}
	if code, _, _ := run(t, f, nil, "send", "-to", "99990001", a); code != ExitOK {
		t.Errorf("send -to 99990001: exit %d", code)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(sent, " ") != "04077771 99990001" || len(asked) != 3 {
		t.Errorf("sent to %v after asking %v; want 04077771 and 99990001 after three look-ups", sent, asked)
	}
}
