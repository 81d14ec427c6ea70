//go:build lab && !gpiosim

package gpio

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestOnKernelGPIOSim runs this package's gpio-sim tests (sim_test.go, built
// with -tags gpiosim) inside qemu on Debian's kernel with the gpio-sim module
// (tools/qemu-gpio/run.sh), and fails if the guest's tests fail or do not
// report.
func TestOnKernelGPIOSim(t *testing.T) {
	for _, c := range []string{"apt-get", "dpkg-query"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Fatalf("%s not found: the qemu GPIO harness needs a Debian machine", c)
		}
	}
	bin := filepath.Join(t.TempDir(), "gpio.test")
	build := exec.Command("go", "test", "-c", "-tags", "gpiosim", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the guest test: %v\n%s", err, out)
	}
	out, err := exec.Command("bash", "../../tools/qemu-gpio/run.sh", bin, "-test.v").CombinedOutput()
	console := string(out)
	if err != nil {
		t.Fatalf("qemu harness: %v\n%s", err, tail(console))
	}
	m := regexp.MustCompile(`FAXBOX-GPIO-EXIT (\d+)`).FindStringSubmatch(console)
	if m == nil {
		t.Fatalf("the guest did not report:\n%s", tail(console))
	}
	for _, name := range []string{"TestLEDsOnGPIOSim", "TestButtonsOnGPIOSim", "TestMissingLine"} {
		if !strings.Contains(console, "--- PASS: "+name) {
			t.Errorf("guest test %s did not pass", name)
		}
	}
	if m[1] != "0" || t.Failed() {
		t.Fatalf("guest tests failed (exit %s):\n%s", m[1], tail(console))
	}
}

func tail(s string) string {
	if len(s) > 4000 {
		return s[len(s)-4000:]
	}
	return s
}
