// Package repocheck holds checks over the repository's own files.
package repocheck

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// root is the repository's top directory.
func root(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("git rev-parse: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// The product stands on its own: its code, comments and docs never send the
// reader to design notes that are not in the repository.
func TestNoCitationsOfOutsideDocuments(t *testing.T) {
	top := root(t)
	out, err := exec.Command("git", "-C", top, "ls-files", "-co", "--exclude-standard").Output()
	if err != nil {
		t.Fatal(err)
	}
	cite := regexp.MustCompile(`\b(LAB|SPEC)(\.md)?\s*§|\b(LAB|SPEC)\.md\b|shared/(SPEC|LAB)`)
	checked := 0
	for _, f := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(f, "vendor/") || strings.Contains(f, "testdata/") {
			continue
		}
		switch filepath.Ext(f) {
		case ".go", ".md", ".sh", ".tmpl", ".yaml", ".mk", ".in", ".cfg", "":
		default:
			continue
		}
		b, err := os.ReadFile(filepath.Join(top, f))
		if err != nil {
			continue // listed but deleted in the work tree
		}
		checked++
		for i, line := range bytes.Split(b, []byte("\n")) {
			if cite.Match(line) {
				t.Errorf("%s:%d cites a document that is not in the repository: %s", f, i+1, bytes.TrimSpace(line))
			}
		}
	}
	if checked < 50 {
		t.Fatalf("only %d files checked; the file list is wrong", checked)
	}
}
