// Package web is the office console faxbox serves at "/": a page, a style
// sheet and a script, embedded in the binary so the console works on a LAN
// without internet. The console talks only to the box's own HTTP API, with
// the API token the user signs in with (kept in the browser tab's
// sessionStorage, never in a URL).
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"path"
	"sync"
)

//go:embed static
var static embed.FS

// Index is the name of the console's page.
const Index = "index.html"

// File is one embedded file of the console.
type File struct {
	Name        string
	ContentType string
	ETag        string // quoted, from the content's SHA-256
	Body        []byte
}

var (
	once  sync.Once
	files map[string]File
)

// load reads every embedded file once.
func load() {
	files = map[string]File{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return fmt.Errorf("web: read %s: %w", p, err)
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		name := path.Base(p)
		files[name] = File{Name: name, ContentType: ct, ETag: `"` + hex.EncodeToString(sum[:8]) + `"`, Body: b}
		return nil
	})
	if err != nil {
		// The files are compiled in: a failure here is a broken build.
		panic(err)
	}
}

// Lookup returns the embedded file name (a base name such as "app.js" or
// Index) and whether it exists.
func Lookup(name string) (File, bool) {
	once.Do(load)
	f, ok := files[name]
	return f, ok
}

// Names lists the embedded files.
func Names() []string {
	once.Do(load)
	out := make([]string, 0, len(files))
	for n := range files {
		out = append(out, n)
	}
	return out
}

// ContentSecurityPolicy is the policy the console is served with: its own
// files only, no inline script or style, API calls to the box itself, PNG
// previews as data: URLs and PDFs shown from blob: URLs.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"connect-src 'self'; frame-src blob:; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
