//go:build lab

package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/internal/testkit"
)

// TestDiskFullNoStuckJob: a job becomes due while the data disk is full and
// faxbox was killed; once space is free again the job ends (here: delivered
// on the test line) instead of staying "dialing" with no line busy. Runs on
// a real 40 MB tmpfs (root).
func TestDiskFullNoStuckJob(t *testing.T) {
	testkit.Require(t, "gs", "mount", "umount")
	if os.Geteuid() != 0 {
		t.Fatal("this test mounts a tmpfs: run it as root (make test does)")
	}
	bin := buildFaxbox(t)
	data := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", data).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", data).Run() })
	addr := freeAddr(t)
	base := "http://" + addr
	cfgPath := filepath.Join(t.TempDir(), "faxbox.json")
	os.WriteFile(cfgPath, []byte(`{
  "tokens": ["disk-test-token"],
  "limits": {"min_free_bytes": 1048576},
  "test_line": {"prefix": "9999000", "page_time": "100ms", "channels": 2}
}`), 0o600)
	args := []string{"serve", "-config", cfgPath, "-data", data, "-listen", addr}
	p := startProc(t, bin, args...)
	waitHealthy(t, base, p)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last faxbox log:\n%s", p.log)
		}
	})
	c := &testkit.Client{Base: base, Token: "disk-test-token"}
	sendAt := time.Now().Add(8 * time.Second)
	var j job.Job
	if r := c.Submit(t, "/v1/faxes", &j, testkit.File("file", "d.txt", []byte("one page")),
		testkit.Field("to", "99990001"), testkit.Field("send_at", sendAt.Format(time.RFC3339))); r.StatusCode != 202 {
		t.Fatalf("submit: %d", r.StatusCode)
	}
	c.WaitJob(t, "/v1/faxes/"+j.ID, job.Ready, 20*time.Second, false)
	filler := filepath.Join(data, "filler")
	exec.Command("dd", "if=/dev/zero", "of="+filler, "bs=1M", "count=64").Run() // fills the tmpfs
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
	time.Sleep(time.Until(sendAt) + time.Second)
	p = startProc(t, bin, args...)
	waitHealthy(t, base, p)
	time.Sleep(2 * time.Second) // the job is due and its attempt cannot be recorded
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	got := c.WaitJob(t, "/v1/faxes/"+j.ID, job.Delivered, 90*time.Second, false)
	if got.Status != job.Delivered {
		b, _ := json.MarshalIndent(got, "", " ")
		t.Fatalf("job after the disk was freed: %s\n%s", b, p.log)
	}
	var st struct {
		Lines []struct{ State string } `json:"lines"`
	}
	c.Do(t, "GET", "/v1/lines", nil, "", &st)
	for i, l := range st.Lines {
		if l.State != "idle" {
			t.Errorf("line %d is %s after the job ended", i+1, l.State)
		}
	}
}
