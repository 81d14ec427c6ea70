package api

import (
	"bufio"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestOpenAPIMatchesRoutes checks docs/openapi.yaml against the handlers:
// every registered route is documented and every documented one registered.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	f, err := os.Open("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pathRe := regexp.MustCompile(`^  (/[^:]*):\s*$`)
	methRe := regexp.MustCompile(`^    (get|post|put|delete|patch):\s*$`)
	doc := map[string]bool{}
	inPaths, cur := false, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "paths:" {
			inPaths = true
			continue
		}
		if !inPaths {
			continue
		}
		if m := pathRe.FindStringSubmatch(line); m != nil {
			cur = m[1]
		} else if m := methRe.FindStringSubmatch(line); m != nil && cur != "" {
			doc[strings.ToUpper(m[1])+" "+cur] = true
		}
	}
	code := map[string]bool{}
	for _, r := range (&Server{}).Routes() {
		code[r.Method+" "+r.Path] = true
	}
	var missing, extra []string
	for k := range code {
		if !doc[k] {
			missing = append(missing, k)
		}
	}
	for k := range doc {
		if !code[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("openapi.yaml out of date:\n  routes not documented: %v\n  documented but not served: %v", missing, extra)
	}
	if len(code) < 10 {
		t.Fatalf("only %d routes found", len(code))
	}
}
