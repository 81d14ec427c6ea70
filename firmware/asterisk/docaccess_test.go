package asterisk

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/ami"
	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/failure"
)

// someoneElse is a uid that is neither this process's nor root.
const someoneElse = 54321

// docsDir returns a documents directory with mode perm whose ancestors
// anyone may search (t.TempDir's own directories are 0700).
func docsDir(t *testing.T, perm os.FileMode) string {
	t.Helper()
	base := t.TempDir()
	for p := base; p != filepath.Dir(p) && p != os.TempDir(); p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(base, "documents")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, perm); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestCheckDocuments: Asterisk's user may read faxbox's documents when it
// shares faxbox's group (documents 0750, files 0640); not when the
// documents directory shuts it out or it is in no group of faxbox's. The
// probe is removed either way.
func TestCheckDocuments(t *testing.T) {
	ours := os.Getegid()
	for _, c := range []struct {
		name  string
		perm  os.FileMode
		uid   int
		gids  []int
		allow bool
		says  string
	}{
		{"in faxbox's group", 0o750, someoneElse, []int{someoneElse, ours}, true, ""},
		{"root reads anything", 0o700, 0, nil, true, ""},
		{"documents directory shut", 0o700, someoneElse, []int{ours}, false, "may not search {dir} "},
		{"not in faxbox's group", 0o755, someoneElse, []int{someoneElse}, false, "may not search {dir}/.asterisk-check-"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := docsDir(t, c.perm)
			err := CheckDocuments(dir, c.uid, c.gids)
			if (err == nil) != c.allow {
				t.Fatalf("CheckDocuments = %v, want allowed %v", err, c.allow)
			}
			says := strings.ReplaceAll(c.says, "{dir}", dir)
			if err != nil && (!strings.Contains(err.Error(), says) || !strings.Contains(err.Error(), "uid 54321")) {
				t.Errorf("message %q does not say who may not do what where (%q)", err, says)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("the probe was left behind: %v", left)
			}
		})
	}
}

// TestStartupCheckRaisesTheAlarm: New checks the documents directory for
// Asterisk's user; a failed check is the box's document alarm, and it clears
// by itself once the directory is fixed.
func TestStartupCheckRaisesTheAlarm(t *testing.T) {
	old := recheckEvery
	recheckEvery = 0
	t.Cleanup(func() { recheckEvery = old })
	dir := docsDir(t, 0o700)
	d, err := New(Config{Group: "trunk", Documents: dir, UID: someoneElse, GID: os.Getegid()}, nil, &sink{})
	if err != nil {
		t.Fatal(err)
	}
	ds := map[string]*Dialler{"trunk": d}
	if p := DocumentProblem(ds); !strings.Contains(p, "may not search "+dir) {
		t.Fatalf("DocumentProblem = %q, want the documents directory named", p)
	}
	if err := os.Chmod(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if p := DocumentProblem(ds); p != "" {
		t.Fatalf("fixed, DocumentProblem = %q", p)
	}
}

type sink struct {
	mu      sync.Mutex
	results []dialler.Result
}

func (s *sink) Progress(dialler.Progress) {}
func (s *sink) Result(r dialler.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.results = append(s.results, r)
}

func (s *sink) last(t *testing.T) dialler.Result {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.results) == 0 {
		t.Fatal("no result")
	}
	return s.results[len(s.results)-1]
}

func msg(kv ...string) ami.Message {
	var m ami.Message
	for i := 0; i+1 < len(kv); i += 2 {
		m = append(m, ami.Header{Key: kv[i], Value: kv[i+1]})
	}
	return m
}

// run plays one originated fax attempt's events, as the real Asterisk sends
// them (see lab_test.go), with the given events between answer and hangup.
func run(d *Dialler, id string, middle ...ami.Message) {
	r := req()
	r.AttemptID = id
	c := &call{req: r, uid: id, cause: -1, reason: -1}
	d.mu.Lock()
	d.calls[id], d.uids[id] = c, c
	d.mu.Unlock()
	d.Handle(msg("Event", "OriginateResponse", "Uniqueid", id, "Response", "Success", "Reason", "4", "Channel", "PJSIP/trunk-00000001"))
	for _, m := range middle {
		d.Handle(append(m, ami.Header{Key: "Uniqueid", Value: id}))
	}
	d.Handle(msg("Event", "Hangup", "Uniqueid", id, "Cause", "16"))
}

// TestFileErrorRaisesTheAlarm: res_fax's FILE_ERROR "error reading file" on a
// validated document is box.document_access and raises the alarm; the next
// attempt whose fax session starts clears it, on any line group.
func TestFileErrorRaisesTheAlarm(t *testing.T) {
	s := &sink{}
	a, _ := New(Config{Group: "a"}, nil, s)
	b, _ := New(Config{Group: "b"}, nil, s)
	ds := map[string]*Dialler{"a": a, "b": b}
	if p := DocumentProblem(ds); p != "" {
		t.Fatalf("before any attempt: %q", p)
	}
	run(a, "at_1", msg("Event", "UserEvent", "UserEvent", "FaxboxResult", "Status", "FAILED", "Error", "FILE_ERROR", "StatusStr", "error reading file", "Pages", "0"))
	if r := s.last(t); r.Code != failure.BoxDocumentAccess || r.ReachedFax {
		t.Fatalf("result %+v, want box.document_access, not a try", r)
	}
	if p := DocumentProblem(ds); !strings.Contains(p, "error reading file") || !strings.Contains(p, req().Fax.TIFF) {
		t.Fatalf("DocumentProblem = %q, want the file and Asterisk's text", p)
	}
	time.Sleep(time.Millisecond) // observations are ordered by time
	run(b, "at_2",
		msg("Event", "FAXStatus", "Status", "FAX Transmission In Progress"),
		msg("Event", "UserEvent", "UserEvent", "FaxboxResult", "Status", "SUCCESS", "Error", "HANGUP", "StatusStr", "OK", "Pages", "2"))
	if r := s.last(t); !r.OK() {
		t.Fatalf("second attempt: %+v", r)
	}
	if p := DocumentProblem(ds); p != "" {
		t.Fatalf("a fax read its file, DocumentProblem still %q", p)
	}
}
