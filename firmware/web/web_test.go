package web

import (
	"regexp"
	"strings"
	"testing"
)

// TestConsoleFilesAgree checks the embedded files against each other: the
// page loads the script and style sheet that exist, every element the
// script looks up by id and every label's field is on the page, and nothing
// inline that the content security policy would block.
func TestConsoleFilesAgree(t *testing.T) {
	page, ok := Lookup(Index)
	js, ok2 := Lookup("app.js")
	css, ok3 := Lookup("app.css")
	if !ok || !ok2 || !ok3 {
		t.Fatalf("embedded files: %v", Names())
	}
	html := string(page.Body)
	for _, ref := range regexp.MustCompile(`(?:src|href)="/ui/([^"]+)"`).FindAllStringSubmatch(html, -1) {
		if _, ok := Lookup(ref[1]); !ok {
			t.Errorf("the page loads /ui/%s, which is not embedded", ref[1])
		}
	}
	ids := map[string]bool{}
	for _, m := range regexp.MustCompile(`\sid="([^"]+)"`).FindAllStringSubmatch(html, -1) {
		if ids[m[1]] {
			t.Errorf("id %q is on the page twice", m[1])
		}
		ids[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`\$\("([^"]+)"\)`).FindAllStringSubmatch(string(js.Body), -1) {
		if !ids[m[1]] {
			t.Errorf("app.js looks up #%s, which is not on the page", m[1])
		}
	}
	for _, m := range regexp.MustCompile(`aria-(?:controls|describedby|labelledby)="([^"]+)"`).FindAllStringSubmatch(html, -1) {
		for _, id := range strings.Fields(m[1]) {
			if !ids[id] {
				t.Errorf("an element refers to #%s, which is not on the page", id)
			}
		}
	}
	for _, m := range regexp.MustCompile(`<label for="([^"]+)"`).FindAllStringSubmatch(html, -1) {
		if !ids[m[1]] {
			t.Errorf("a label is for #%s, which is not on the page", m[1])
		}
	}
	for _, bad := range []string{"<script>", " style=", " onclick=", " onload=", "javascript:", `src="http`, `href="http`, `href="//`, `src="//`} {
		if strings.Contains(html, bad) {
			t.Errorf("the page has %q: inline code or an outside address", bad)
		}
	}
	for name, body := range map[string]string{"app.js": string(js.Body), "app.css": string(css.Body)} {
		if regexp.MustCompile(`https?://`).MatchString(body) || strings.Contains(body, "@import") {
			t.Errorf("%s refers to an outside address", name)
		}
	}
	if strings.Contains(ContentSecurityPolicy, "unsafe") {
		t.Errorf("the policy allows unsafe sources: %s", ContentSecurityPolicy)
	}
}
