package testkit

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// ProcStatusKB reads one kB figure of a running process from
// /proc/<pid>/status: "VmRSS" (resident now), "VmHWM" (the resident peak).
func ProcStatusKB(t testing.TB, pid int, key string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatalf("testkit: /proc/%d/status %s: %q", pid, key, v)
			}
			return n
		}
	}
	t.Fatalf("testkit: /proc/%d/status has no %s", pid, key)
	return 0
}
