package box

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/internal/testkit"
)

// TestWebPageInChromium loads the office page in headless Chromium against a
// running box and checks that it shows the queue (a delivered fax) and the
// lines, rendered by the page's own script from the API.
func TestWebPageInChromium(t *testing.T) {
	testkit.Require(t, "chromium")
	e := startBox(t, nil)
	var j job.Job
	e.c.Submit(t, "/v1/faxes", &j, testkit.File("file", "a.txt", []byte("web page test")), testkit.Field("to", "99990001"))
	e.waitStatus(t, j.ID, job.Delivered, 30*time.Second)
	var failed job.Job
	e.c.Submit(t, "/v1/faxes", &failed, testkit.File("file", "a.txt", []byte("x")), testkit.Field("to", "99990006"))
	e.waitStatus(t, failed.ID, job.Failed, 30*time.Second)

	profile := t.TempDir()
	shot := filepath.Join(t.TempDir(), "page.png")
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + profile, "--virtual-time-budget=8000", "--window-size=1200,800"}
	url := e.c.Base + "/#token=" + token
	out, err := exec.Command("chromium", append(args, "--dump-dom", url)...).Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	dom := string(out)
	for _, want := range []string{`data-id="` + j.ID + `"`, `class="st delivered"`, `data-id="` + failed.ID + `"`, "line.invalid_number", "test/1", "Make busy"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page does not show %q", want)
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%.4000s", dom)
	}
	if err := exec.Command("chromium", append(args, "--screenshot="+shot, url)...).Run(); err == nil {
		if dst := os.Getenv("FAXBOX_SCREENSHOT"); dst != "" {
			b, _ := os.ReadFile(shot)
			os.WriteFile(dst, b, 0o644)
		}
	}
}
