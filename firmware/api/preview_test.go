package api_test

import (
	"bytes"
	"image/png"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/web"
	"github.com/faxbox/faxbox/internal/testkit"
	"github.com/faxbox/faxbox/internal/testkit/testbox"
)

// previewAnswer is the body of POST /v1/preview.
type previewAnswer struct {
	Pages      int
	Resolution string
	PageSize   string `json:"page_size"`
	Images     []struct {
		Page, Width, Height int
		PNG                 []byte
	}
}

// TestPreviewDrawsConvertedPages converts a 2-page PDF and a text file with
// real ghostscript and checks the drawn pages: three, in order, shaped like
// the page size at 51 dpi, with ink on them; nothing is queued or kept.
func TestPreviewDrawsConvertedPages(t *testing.T) {
	e := testbox.Start(t, nil)
	var p previewAnswer
	resp := e.C.Submit(t, "/v1/preview", &p,
		testkit.File("file", "letter.pdf", testkit.PDF(t, 2)),
		testkit.File("file", "note.txt", []byte("a short note\nin two lines\n")),
		testkit.Field("resolution", "standard"), testkit.Field("page_size", "letter"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("preview: %d", resp.StatusCode)
	}
	if p.Pages != 3 || len(p.Images) != 3 || p.Resolution != "standard" || p.PageSize != "letter" {
		t.Fatalf("preview: %d pages, %d images, %s %s; want 3, 3, standard letter", p.Pages, len(p.Images), p.Resolution, p.PageSize)
	}
	for i, im := range p.Images {
		img, err := png.Decode(bytes.NewReader(im.PNG))
		if err != nil {
			t.Fatalf("page %d: %v", i+1, err)
		}
		b := img.Bounds()
		// 1728 pixels at 204 dpi and 11 inches, drawn at 51 dpi.
		if im.Page != i+1 || b.Dx() != 432 || b.Dx() != im.Width || b.Dy() != im.Height || b.Dy() < 555 || b.Dy() > 567 {
			t.Errorf("page %d: number %d, %dx%d (said %dx%d); want 432x561", i+1, im.Page, b.Dx(), b.Dy(), im.Width, im.Height)
		}
		dark := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				if r, _, _, _ := img.At(x, y).RGBA(); r < 0x8000 {
					dark++
				}
			}
		}
		if dark == 0 || dark > b.Dx()*b.Dy()/2 {
			t.Errorf("page %d: %d dark pixels of %d: not a drawn page", i+1, dark, b.Dx()*b.Dy())
		}
	}
	if jobs := e.Jobs(t, job.KindFax); len(jobs) != 0 {
		t.Errorf("a preview queued %d jobs", len(jobs))
	}
	noDocuments(t, e)
}

// TestPreviewRefusals checks the preview's error answers: the upload
// checks of POST /v1/faxes, its own fields only, the page limit, the token.
func TestPreviewRefusals(t *testing.T) {
	e := testbox.Start(t, func(c *config.Config) { c.Limits.MaxPages = 1 })
	cases := []struct {
		what         string
		parts        []testkit.Part
		status       int
		code, field  string
		unauthorized bool
	}{
		{"no file", []testkit.Part{testkit.Field("resolution", "fine")}, 400, "missing_file", "file", false},
		{"truncated PDF", []testkit.Part{testkit.File("file", "a.pdf", []byte("%PDF-1.4\n1 0 obj\n"))}, 422, "unreadable_document", "file", false},
		{"a fax field", []testkit.Part{testkit.File("file", "a.txt", []byte("x\n")), testkit.Field("to", "99990001")}, 400, "unknown_field", "to", false},
		{"bad resolution", []testkit.Part{testkit.File("file", "a.txt", []byte("x\n")), testkit.Field("resolution", "ultra")}, 400, "invalid_field", "resolution", false},
		{"over max_pages", []testkit.Part{testkit.File("file", "a.pdf", testkit.PDF(t, 2))}, 422, "too_many_pages", "file", false},
		{"no token", []testkit.Part{testkit.File("file", "a.txt", []byte("x\n"))}, 401, "unauthorized", "", true},
	}
	for _, c := range cases {
		cl := *e.C
		if c.unauthorized {
			cl.Token = "not-the-token"
		}
		var er apiErr
		resp := cl.Submit(t, "/v1/preview", &er, c.parts...)
		expectErr(t, c.what, resp, er, c.status, c.code, c.field)
	}
	noDocuments(t, e)
}

// TestConsoleFiles checks how the console's embedded files are served:
// without a token, with the content security policy, typed, revalidated by
// ETag; unknown names are 404.
func TestConsoleFiles(t *testing.T) {
	e := testbox.Start(t, nil)
	get := func(path, etag string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", e.C.Base+path, nil)
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get("/", "")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		resp.Header.Get("Content-Security-Policy") != web.ContentSecurityPolicy || !strings.Contains(body, `src="/ui/app.js"`) {
		t.Fatalf("/: %d %v", resp.StatusCode, resp.Header)
	}
	for name, ctype := range map[string]string{"app.js": "text/javascript", "app.css": "text/css"} {
		resp, body := get("/ui/"+name, "")
		f, _ := web.Lookup(name)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) || body != string(f.Body) || resp.Header.Get("ETag") != f.ETag {
			t.Errorf("/ui/%s: %d %q %q", name, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("ETag"))
		}
		if resp, _ := get("/ui/"+name, f.ETag); resp.StatusCode != http.StatusNotModified {
			t.Errorf("/ui/%s with its ETag: %d, want 304", name, resp.StatusCode)
		}
	}
	if resp, _ := get("/ui/nothing.js", ""); resp.StatusCode != 404 {
		t.Errorf("/ui/nothing.js: %d", resp.StatusCode)
	}
	if resp, _ := get("/ui/..%2fweb.go", ""); resp.StatusCode != 404 {
		t.Errorf("/ui/..%%2fweb.go: %d", resp.StatusCode)
	}
}
