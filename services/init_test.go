package services

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestInitScriptsShape(t *testing.T) {
	for _, name := range []string{"S20dahdi", "S50asterisk", "S95faxbox"} {
		b, err := os.ReadFile(filepath.Join("init", name))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for _, want := range []string{"start)", "stop)", "restart)", "status)"} {
			if !strings.Contains(s, want) {
				t.Errorf("%s has no %s", name, want)
			}
		}
		if out, err := exec.Command("sh", "-n", filepath.Join("init", name)).CombinedOutput(); err != nil {
			t.Errorf("%s: sh -n: %v %s", name, err, out)
		}
	}
	b, _ := os.ReadFile("init/S50asterisk")
	if !strings.Contains(string(b), "faxbox render-config") || !strings.Contains(string(b), "-U asterisk") {
		t.Error("S50asterisk must render the configuration first and run as the asterisk user")
	}
}
