//go:build lab

package asterisk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/asterisk"
	"github.com/faxbox/faxbox/firmware/box"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/internal/testkit"
	"github.com/faxbox/faxbox/tools/lab"
)

// syncBuffer is a log destination the box's goroutines share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDocumentsAsteriskCannotRead: a box whose Asterisk cannot read its
// documents keeps its jobs and shows the alarm instead of failing them as
// unreadable documents. The box's data directory is outside the lab's
// chroot, where its Asterisk cannot see it (res_fax: FILE_ERROR "error
// reading file"), and asterisk.user is nobody, whom the start-up check
// finds shut out of the data directory. A job with max_attempts 1 stays
// active with box.document_access attempts; once the directory is shared
// into the chroot the next attempt delivers it and the alarm clears.
func TestDocumentsAsteriskCannotRead(t *testing.T) {
	testkit.Require(t, "gs", "tiff2pdf", "debootstrap")
	data, err := os.MkdirTemp("", "faxbox-unseen-") // 0700, not shared into the chroot
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(data)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Name: "docaccess", BasePort: 34060, Log: testWriter{t}})
	if err != nil {
		t.Fatalf("the Asterisk lab did not come up: %v", err)
	}
	t.Cleanup(l.Down)
	cfg := l.FaxboxConfig(config.Default())
	cfg.DataDir, cfg.Tokens = data, []string{token}
	cfg.Asterisk.User = "nobody"
	logs := &syncBuffer{}
	b, err := box.Open(ctx, cfg, box.Options{Version: "lab", Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	sctx, scancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Serve(sctx, ln); close(done) }()
	defer func() { scancel(); <-done; b.Close() }()
	c := &testkit.Client{Base: "http://" + ln.Addr().String(), Token: token}

	if !alarmed(t, c) || !strings.Contains(logs.String(), "may not search "+data) {
		t.Fatalf("start-up check: alarms %v; log:\n%s", alarms(t, c), logs.String())
	}
	var j job.Job
	c.Submit(t, "/v1/faxes", &j, testkit.File("file", "doc.pdf", testkit.PDF(t, 1)), testkit.Field("resolution", "standard"),
		testkit.Field("to", "100"), testkit.Field("max_attempts", "1"), testkit.Field("retry_interval", "3s"))
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		c.Do(t, "GET", "/v1/faxes/"+j.ID, nil, "", &j)
		if len(j.Attempts) >= 2 && j.Attempts[1].Result == "failed" {
			break // a second dial although max_attempts is 1
		}
		if j.Status.Terminal() || time.Now().After(deadline) {
			b, _ := json.Marshal(j)
			t.Fatalf("not kept for another attempt: %s", b)
		}
	}
	for _, a := range j.Attempts[:2] {
		if a.Error == nil || a.Error.Code != failure.BoxDocumentAccess || !strings.Contains(a.Error.Raw, "error reading file") {
			t.Fatalf("attempt %d: %+v, want box.document_access with Asterisk's text", a.N, a.Error)
		}
	}
	if !alarmed(t, c) {
		t.Fatalf("FILE_ERROR, alarms %v", alarms(t, c))
	}
	if err := lab.Share(data); err != nil {
		t.Fatal(err)
	}
	defer lab.Unshare(data)
	got := c.WaitJob(t, "/v1/faxes/"+j.ID, job.Delivered, 3*time.Minute, true)
	if a := got.LastAttempt(); a.PagesSent != 1 || a.Transport != "t38" || got.Tries != 1 {
		b, _ := json.Marshal(got.Attempts)
		t.Errorf("delivered: tries %d, attempts %s", got.Tries, b)
	}
	if alarmed(t, c) {
		t.Errorf("delivered, alarms still %v", alarms(t, c))
	}
}

func alarms(t *testing.T, c *testkit.Client) []string {
	t.Helper()
	var st struct {
		Extra struct {
			Alarms []string `json:"alarms"`
		} `json:"extra"`
	}
	c.Do(t, "GET", "/v1/status", nil, "", &st)
	return st.Extra.Alarms
}

func alarmed(t *testing.T, c *testkit.Client) bool {
	return slices.Contains(alarms(t, c), asterisk.DocumentAlarm)
}
