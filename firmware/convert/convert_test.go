package convert

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/bits"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/tiff"
	"github.com/faxbox/faxbox/internal/testkit"
)

// The tests run the real ghostscript, tiff2pdf and prlimit; they fail (never
// skip) when one is missing.

func put(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func conv(t testing.TB) *Converter {
	t.Helper()
	testkit.Require(t, "gs", "tiff2pdf", "tiffcp", "prlimit")
	return New(Config{Timeout: time.Minute, MaxPages: 20})
}

var now = time.Date(2026, 11, 22, 9, 30, 0, 0, time.UTC)

// gsMake runs ghostscript to make a fixture from PostScript source.
func gsMake(t testing.TB, dir, name, ps string, args ...string) string {
	t.Helper()
	src := put(t, dir, name+".ps", []byte(ps))
	out := filepath.Join(dir, name)
	all := append([]string{"-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-o", out}, args...)
	if b, err := exec.Command("gs", append(all, src)...).CombinedOutput(); err != nil {
		t.Fatalf("gs %v: %v\n%s", args, err, b)
	}
	return out
}

// page is one decoded output page: 1 bit per pixel, 1 = black.
type page struct {
	tiff.Page
	bits []byte
}

func (p page) rowBytes() int { return (p.Width + 7) / 8 }

// ink counts black pixels in rows [from, to).
func (p page) ink(from, to int) int {
	n := 0
	for _, b := range p.bits[from*p.rowBytes() : to*p.rowBytes()] {
		n += bits.OnesCount8(b)
	}
	return n
}

// rows returns rows [from, to) packed.
func (p page) rows(from, to int) []byte { return p.bits[from*p.rowBytes() : to*p.rowBytes()] }

// longestRun is the longest horizontal run of black pixels in row y.
func (p page) longestRun(y int) int {
	best, run := 0, 0
	row := p.bits[y*p.rowBytes():]
	for x := 0; x < p.Width; x++ {
		if row[x/8]&(0x80>>(x%8)) != 0 {
			run++
			best = max(best, run)
		} else {
			run = 0
		}
	}
	return best
}

// pages decodes every page of a TIFF (validating it first).
func pages(t testing.TB, path string) []page {
	t.Helper()
	if _, err := tiff.Validate(path, Width); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := tiff.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]page, len(f.Pages))
	for i, p := range f.Pages {
		bm, err := f.DecodeRows(i, p.Height)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = page{p, bm}
	}
	return out
}

// headerRows is the height of the header band in rows at ydpi.
func headerRows(ydpi int) int { return (14*ydpi + 71) / 72 }

// leftovers lists what is in dir besides the names given.
func leftovers(t *testing.T, dir string, keep ...string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var extra []string
	for _, e := range ents {
		found := false
		for _, k := range keep {
			if e.Name() == k {
				found = true
			}
		}
		if !found {
			extra = append(extra, e.Name())
		}
	}
	return extra
}

// TestTwoPagePDF: a 2-page PDF becomes 2 pages of 1728 pixels at fine
// resolution, G4, A4 height; libtiff's tiffinfo agrees with our reader.
func TestTwoPagePDF(t *testing.T) {
	c := conv(t)
	testkit.Require(t, "tiffinfo")
	dir := t.TempDir()
	pdf := put(t, dir, "two.pdf", testkit.PDF(t, 2))
	out := filepath.Join(dir, "out.tif")
	n, err := c.Convert(context.Background(), []Input{{Path: pdf, Type: PDF}}, out, Options{Resolution: "fine", PageSize: "a4", Now: now})
	if err != nil || n != 2 {
		t.Fatalf("Convert = %d, %v; want 2 pages", n, err)
	}
	info, err := tiff.Info(out)
	if err != nil || len(info) != 2 {
		t.Fatalf("Info: %d pages, %v", len(info), err)
	}
	for i, p := range info {
		x, y := p.Resolution()
		if p.Width != 1728 || p.Height != 2292 || x != 204 || y != 196 || p.Compression != tiff.CompressionG4 {
			t.Errorf("page %d: %dx%d at %vx%v dpi, %s; want 1728x2292 at 204x196, G4", i+1, p.Width, p.Height, x, y, tiff.CompressionName(p.Compression))
		}
	}
	ti, err := exec.Command("tiffinfo", out).CombinedOutput()
	if err != nil {
		t.Fatalf("tiffinfo: %v\n%s", err, ti)
	}
	for _, want := range []string{"Image Width: 1728 Image Length: 2292", "Resolution: 204, 196 pixels/inch", "Compression Scheme: CCITT Group 4"} {
		if c := strings.Count(string(ti), want); c != 2 {
			t.Errorf("tiffinfo shows %q %d times, want 2:\n%s", want, c, ti)
		}
	}
	// With Config.Decode the result is decoded strip by strip: the same pages.
	decoded := filepath.Join(dir, "decoded.tif")
	dc := New(Config{Decode: true})
	if n, err := dc.Convert(context.Background(), []Input{{Path: pdf, Type: PDF}}, decoded, Options{Resolution: "fine", Now: now}); err != nil || n != 2 {
		t.Fatalf("Convert with Decode = %d, %v", n, err)
	}
	if a, b := pages(t, out), pages(t, decoded); !bytes.Equal(a[1].bits, b[1].bits) {
		t.Error("Decode changed the output")
	}
	os.Remove(decoded)
	// Content is there, and there is no header band when none was asked.
	for i, p := range pages(t, out) {
		if p.ink(0, p.Height) < 2000 {
			t.Errorf("page %d is (nearly) blank: %d black pixels", i+1, p.ink(0, p.Height))
		}
		if h := p.ink(0, headerRows(196)); h != 0 {
			t.Errorf("page %d: %d black pixels in the header band, with no header", i+1, h)
		}
	}
	if extra := leftovers(t, dir, "two.pdf", "out.tif"); len(extra) > 0 {
		t.Errorf("left behind: %v", extra)
	}
}

// TestResolutionsAndPageSizes converts a Legal-size page with a frame near
// its edges at every resolution and page size: each output page has the
// page size's height at the resolution, and the whole frame is on it
// (fitted, not cropped).
func TestResolutionsAndPageSizes(t *testing.T) {
	c := conv(t)
	dir := t.TempDir()
	frame := gsMake(t, dir, "frame.pdf", "%!PS\n<< /PageSize [612 1008] >> setpagedevice 6 setlinewidth 12 12 588 984 rectstroke\n/Helvetica findfont 40 scalefont setfont 100 500 moveto (fitted) show showpage\n", "-sDEVICE=pdfwrite")
	want := map[string]int{"standard/a4": 1146, "standard/letter": 1078, "standard/legal": 1372,
		"fine/a4": 2292, "fine/letter": 2156, "fine/legal": 2744,
		"superfine/a4": 4572, "superfine/letter": 4301, "superfine/legal": 5474}
	for _, res := range []string{"standard", "fine", "superfine"} {
		for _, size := range []string{"a4", "letter", "legal"} {
			name := res + "/" + size
			ydpi, rows, err := Geometry(res, size)
			if err != nil || rows != want[name] {
				t.Fatalf("%s: Geometry = %d rows, %v; want %d", name, rows, err, want[name])
			}
			out := filepath.Join(dir, res+"-"+size+".tif")
			n, err := c.Convert(context.Background(), []Input{{Path: frame, Type: PDF}}, out, Options{Resolution: res, PageSize: size, Now: now})
			if err != nil || n != 1 {
				t.Fatalf("%s: %d pages, %v", name, n, err)
			}
			p := pages(t, out)[0]
			x, y := p.Resolution()
			if p.Width != 1728 || p.Height != rows || x != 204 || int(y+0.5) != ydpi {
				t.Errorf("%s: %dx%d at %vx%v dpi; want 1728x%d at 204x%d", name, p.Width, p.Height, x, y, rows, ydpi)
			}
			// The frame's top and bottom edges are long horizontal lines
			// within 5% of the page's top and bottom.
			top, bottom := 0, 0
			for r := 0; r < rows/20; r++ {
				top = max(top, p.longestRun(r))
				bottom = max(bottom, p.longestRun(rows-1-r))
			}
			if top < Width/2 || bottom < Width/2 {
				t.Errorf("%s: frame not fitted: longest line %d px at the top, %d at the bottom", name, top, bottom)
			}
		}
	}
	if _, _, err := Geometry("ultra", "a4"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("unknown resolution: %v", err)
	}
	if _, err := c.Convert(context.Background(), []Input{{Path: frame, Type: PDF}}, filepath.Join(dir, "x.tif"), Options{PageSize: "a3"}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("unknown page size: %v", err)
	}
}

// images makes the test pictures: a black 100×100 square in a 400×300
// picture, in the encodings decoders return, and the same 9 times larger.
func images(t *testing.T) map[string][]byte {
	imagesMu.Lock()
	defer imagesMu.Unlock()
	if imagesCache == nil {
		imagesCache = makeImages(t)
	}
	return imagesCache
}

var (
	imagesMu    sync.Mutex
	imagesCache map[string][]byte
)

func makeImages(t *testing.T) map[string][]byte {
	square := func(x, y int) bool { return x >= 150 && x < 250 && y >= 100 && y < 200 }
	nrgba := image.NewNRGBA(image.Rect(0, 0, 400, 300)) // transparent around the square
	gray := image.NewGray(image.Rect(0, 0, 400, 300))
	gray16 := image.NewGray16(image.Rect(0, 0, 400, 300))
	pal := image.NewPaletted(image.Rect(0, 0, 400, 300), color.Palette{color.White, color.Black, color.Transparent})
	rgb := image.NewRGBA(image.Rect(0, 0, 400, 300))
	for y := 0; y < 300; y++ {
		for x := 0; x < 400; x++ {
			if square(x, y) {
				nrgba.Set(x, y, color.Black)
				gray.Set(x, y, color.Black)
				gray16.Set(x, y, color.Black)
				pal.SetColorIndex(x, y, 1)
				rgb.Set(x, y, color.Black)
			} else {
				gray.Set(x, y, color.White)
				gray16.Set(x, y, color.White)
				pal.SetColorIndex(x, y, uint8(2*(x%2))) // white and transparent
				rgb.Set(x, y, color.White)
			}
		}
	}
	out := map[string][]byte{}
	enc := func(name string, f func(*bytes.Buffer) error) {
		var b bytes.Buffer
		if err := f(&b); err != nil {
			t.Fatal(err)
		}
		out[name] = b.Bytes()
	}
	enc("png-rgba-transparent", func(b *bytes.Buffer) error { return png.Encode(b, nrgba) })
	enc("png-gray", func(b *bytes.Buffer) error { return png.Encode(b, gray) })
	enc("png-gray16", func(b *bytes.Buffer) error { return png.Encode(b, gray16) })
	enc("png-paletted", func(b *bytes.Buffer) error { return png.Encode(b, pal) })
	enc("jpeg-color", func(b *bytes.Buffer) error { return jpeg.Encode(b, rgb, &jpeg.Options{Quality: 95}) })
	enc("jpeg-gray", func(b *bytes.Buffer) error { return jpeg.Encode(b, gray, &jpeg.Options{Quality: 95}) })
	// Nine times larger than the fax page's pixels: box-filtered down in Go.
	large := image.NewGray(image.Rect(0, 0, 3600, 2700))
	for y := 0; y < 2700; y++ {
		for x := 0; x < 3600; x++ {
			if !square(x/9, y/9) {
				large.Pix[y*large.Stride+x] = 0xff
			}
		}
	}
	enc("png-gray-large", func(b *bytes.Buffer) error { return png.Encode(b, large) })
	return out
}

// TestImages converts PNGs and JPEGs of every decoder type: one page each,
// and the black square is there, at the size the fit gives it, with the
// transparent or white rest of the picture white.
func TestImages(t *testing.T) {
	c := conv(t)
	dir := t.TempDir()
	g := newGeom(196, 2292)
	scale := min((g.w-2*imageMargin)/400, (g.h-2*imageMargin-headerRoom)/300) // points per image pixel
	square := (100 * scale * xdpi / 72) * (100 * scale * 196 / 72)            // device pixels
	for name, b := range images(t) {
		typ := PNG
		if strings.HasPrefix(name, "jpeg") {
			typ = JPEG
		}
		in := put(t, dir, name, b)
		out := filepath.Join(dir, name+".tif")
		n, err := c.Convert(context.Background(), []Input{{Path: in, Type: typ}}, out, Options{Resolution: "fine", Now: now})
		if err != nil || n != 1 {
			t.Fatalf("%s: %d pages, %v", name, n, err)
		}
		p := pages(t, out)[0]
		ink := float64(p.ink(0, p.Height))
		if ink < 0.9*square || ink > 1.15*square {
			t.Errorf("%s: %.0f black pixels, want about %.0f (the square alone)", name, ink, square)
		}
	}
}

// TestTIFFInputs converts TIFFs of other compressions, widths and page
// counts: all end up as 1728-pixel G4 pages, one per input page.
func TestTIFFInputs(t *testing.T) {
	c := conv(t)
	dir := t.TempDir()
	pdf3 := put(t, dir, "three.pdf", testkit.PDF(t, 3))
	lzw := filepath.Join(dir, "lzw-800.tif")
	pack := filepath.Join(dir, "packbits-850.tif")
	rgb := filepath.Join(dir, "rgb-lzw.tif")
	for _, m := range []struct {
		out  string
		args []string
	}{
		{lzw, []string{"-sDEVICE=tiffgray", "-sCompression=lzw", "-r96", "-g800x1000", "-dFirstPage=1", "-dLastPage=1"}},
		{pack, []string{"-sDEVICE=tiffgray", "-sCompression=pack", "-r100", "-g850x1100"}},
		{rgb, []string{"-sDEVICE=tiff24nc", "-sCompression=lzw", "-r72", "-g612x792", "-dFirstPage=2", "-dLastPage=3"}},
	} {
		if b, err := exec.Command("gs", append([]string{"-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-dFIXEDMEDIA", "-dPDFFitPage", "-o", m.out}, append(m.args, pdf3)...)...).CombinedOutput(); err != nil {
			t.Fatalf("gs: %v\n%s", err, b)
		}
	}
	fax := put(t, dir, "fax.tif", testkit.FaxTIFF(t, 2))
	for _, tc := range []struct {
		path        string
		pages       int
		width, comp int
	}{
		{lzw, 1, 800, tiff.CompressionLZW},
		{pack, 3, 850, tiff.CompressionPackBits},
		{rgb, 2, 612, tiff.CompressionLZW},
		{fax, 2, 1728, tiff.CompressionG4},
	} {
		info, err := tiff.Info(tc.path)
		if err != nil || len(info) != tc.pages || info[0].Width != tc.width || info[0].Compression != tc.comp {
			t.Fatalf("fixture %s: %d pages, %v", tc.path, len(info), err)
		}
		out := tc.path + ".out.tif"
		n, err := c.Convert(context.Background(), []Input{{Path: tc.path, Type: TIFF}}, out, Options{Resolution: "fine", Header: "%n/%N", Now: now})
		if err != nil || n != tc.pages {
			t.Fatalf("%s: %d pages, %v; want %d", filepath.Base(tc.path), n, err, tc.pages)
		}
		for i, p := range pages(t, out) {
			if p.Width != 1728 || p.Compression != tiff.CompressionG4 || p.ink(headerRows(196), p.Height) < 1000 {
				t.Errorf("%s page %d: %dx%d, %s, %d black pixels", filepath.Base(tc.path), i+1, p.Width, p.Height, tiff.CompressionName(p.Compression), p.ink(0, p.Height))
			}
		}
	}
}

// TestText: plain text becomes Courier pages, wrapped and paginated (form
// feeds start a page), with PostScript's special characters and runes
// outside Latin-1 harmless.
func TestText(t *testing.T) {
	c := conv(t)
	dir := t.TempDir()
	long := strings.Repeat("wrap me please ", 40)
	text := "Page one (with parentheses) and a back\\slash, ) showpage (\nÄrger über Öl — ☃ 日本\t<tab>\n" + long + "\n\fPage two\n\fPage three\r\nwith CRLF\n"
	in := put(t, dir, "a.txt", []byte(text))
	out := filepath.Join(dir, "a.tif")
	n, err := c.Convert(context.Background(), []Input{{Path: in, Type: Text}}, out, Options{Resolution: "standard", Now: now})
	if err != nil || n != 3 {
		t.Fatalf("Convert = %d, %v; want 3 pages", n, err)
	}
	ps := pages(t, out)
	// Page one holds more lines than pages two and three: the long line
	// wrapped into several.
	if !(ps[0].ink(0, ps[0].Height) > 3*ps[1].ink(0, ps[1].Height) && ps[1].ink(0, ps[1].Height) > 0 && ps[2].ink(0, ps[2].Height) > 0) {
		t.Errorf("ink per page: %d %d %d", ps[0].ink(0, ps[0].Height), ps[1].ink(0, ps[1].Height), ps[2].ink(0, ps[2].Height))
	}
	// A text longer than a page continues on the next.
	var b strings.Builder
	for i := 1; i <= 150; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	cols, per := textLayout(newGeom(98, 1146))
	if cols < 80 || per < 55 {
		t.Errorf("A4 text layout: %d columns, %d lines; want at least 80x55", cols, per)
	}
	n, err = c.Convert(context.Background(), []Input{{Path: put(t, dir, "b.txt", []byte(b.String())), Type: Text}}, out, Options{Resolution: "standard", Now: now})
	if want := (150 + per - 1) / per; err != nil || n != want {
		t.Errorf("150 lines: %d pages, %v; want %d", n, err, want)
	}
}

func TestPSStringAndLayout(t *testing.T) {
	for in, want := range map[string]string{
		"plain":          "(plain)",
		"a(b)c\\d":       `(a\(b\)c\\d)`,
		") showpage (":   `(\) showpage \()`,
		"Ärger":          `(\304rger)`,
		"☃ 日本\x01\n\xff": "(? ?????)",
		"%!PS":           "(%!PS)",
	} {
		if got := psString(in); got != want {
			t.Errorf("psString(%q) = %s, want %s", in, got, want)
		}
	}
	if got := hexString("/a (b)\n"); got != "<2f61202862290a>" {
		t.Errorf("hexString = %s", got)
	}
	pages := paginate("a\tb\n"+strings.Repeat("x", 25)+"\fnext\n\n\n", 10, 3)
	want := [][]string{{"a       b", "xxxxxxxxxx", "xxxxxxxxxx"}, {"xxxxx"}, {"next", "", ""}}
	if fmt.Sprint(pages) != fmt.Sprint(want) {
		t.Errorf("paginate = %q, want %q", pages, want)
	}
	if got := wrap("one two three four", 9); fmt.Sprint(got) != "[one two three four]" {
		t.Errorf("wrap = %q", got)
	}
	if len(paginate("", 10, 3)) != 1 {
		t.Error("empty text is not one page")
	}
}

// jobs makes two 6-page jobs of several documents, one for each way the
// driver renders: several PDFs (a fax TIFF becomes one) each opened twice,
// and a single PDF amid other documents, opened once.
func jobs(t *testing.T, dir string) map[string][]Input {
	cover := Input{Path: put(t, dir, "cover.txt", []byte("COVER SHEET\n\nTo: test\nFrom: faxbox\n")), Type: Text}
	pic := Input{Path: put(t, dir, "pic.png", images(t)["png-gray"]), Type: PNG}
	return map[string][]Input{
		"several PDFs": {
			cover,
			{Path: put(t, dir, "doc.pdf", testkit.PDF(t, 2)), Type: PDF},
			pic,
			{Path: put(t, dir, "fax.tif", testkit.FaxTIFF(t, 2)), Type: TIFF},
		},
		"one PDF amid others": {
			cover,
			pic,
			{Path: put(t, dir, "three.pdf", testkit.PDF(t, 3)), Type: PDF},
			{Path: put(t, dir, "end.txt", []byte("Closing page\n")), Type: Text},
		},
	}
}

// TestPageOrderAcrossFiles: a job's pages are its documents' pages in
// order. Each page of the combined job is identical, pixel for pixel, to
// the same page of its document converted alone.
func TestPageOrderAcrossFiles(t *testing.T) {
	c := conv(t)
	dir := t.TempDir()
	for name, in := range jobs(t, dir) {
		t.Run(name, func(t *testing.T) { pageOrder(t, c, dir, in) })
	}
}

func pageOrder(t *testing.T, c *Converter, dir string, in []Input) {
	out := filepath.Join(dir, "job.tif")
	n, err := c.Convert(context.Background(), in, out, Options{Resolution: "fine", Now: now})
	if err != nil || n != 6 {
		t.Fatalf("Convert = %d, %v; want 6 pages", n, err)
	}
	job := pages(t, out)
	k := 0
	for i, d := range in {
		alone := filepath.Join(dir, fmt.Sprintf("alone-%d.tif", i))
		if _, err := c.Convert(context.Background(), []Input{d}, alone, Options{Resolution: "fine", Now: now}); err != nil {
			t.Fatal(err)
		}
		for j, p := range pages(t, alone) {
			if !bytes.Equal(p.bits, job[k].bits) {
				t.Errorf("job page %d is not page %d of document %d (%s)", k+1, j+1, i+1, d.Type)
			}
			k++
		}
	}
	if k != 6 {
		t.Errorf("the documents alone have %d pages, the job 6", k)
	}
	// And no two pages of the job are alike.
	for a := range job {
		for b := a + 1; b < len(job); b++ {
			if bytes.Equal(job[a].bits, job[b].bits) {
				t.Errorf("job pages %d and %d are identical", a+1, b+1)
			}
		}
	}
}

// TestHeaderNumbering: the header is drawn at the top of every page, with
// %n/%N counting across all documents of the job. Each page's header band is
// compared, bit for bit, with the band of a reference page whose header is
// the expected text given literally (no placeholders); the rest of the page
// is what the job renders without a header.
func TestHeaderNumbering(t *testing.T) {
	c := conv(t)
	dir := t.TempDir()
	for name, in := range jobs(t, dir) {
		t.Run(name, func(t *testing.T) { headerNumbering(t, c, dir, in) })
	}
	// A header far wider than the page is shrunk to fit, not cut: its band
	// has ink near the right margin but not beyond it.
	blank := put(t, dir, "blank.txt", []byte(" \n"))
	band := headerRows(196)
	wide := filepath.Join(dir, "wide.tif")
	if _, err := c.Convert(context.Background(), []Input{{Path: blank, Type: Text}}, wide, Options{Resolution: "fine", Header: strings.Repeat("W", 300), Now: now}); err != nil {
		t.Fatal(err)
	}
	wp := pages(t, wide)[0]
	right := 0
	for y := 0; y < band; y++ {
		row := wp.bits[y*wp.rowBytes():]
		for x := wp.Width - 1; x >= 0; x-- {
			if row[x/8]&(0x80>>(x%8)) != 0 {
				right = max(right, x)
				break
			}
		}
	}
	if margin := 14 * xdpi / 72; right < Width-margin-80 || right >= Width-margin+2 {
		t.Errorf("wide header ends at x=%d; want just inside the right margin (%d)", right, Width-margin)
	}
}

func headerNumbering(t *testing.T, c *Converter, dir string, in []Input) {
	const station = `ACME (030) \ 12`
	tmpl := "%station  %date  page %n/%N  100%"
	with, without := filepath.Join(dir, "with.tif"), filepath.Join(dir, "without.tif")
	n, err := c.Convert(context.Background(), in, with, Options{Resolution: "fine", Header: tmpl, StationID: station, Now: now})
	if err != nil || n != 6 {
		t.Fatalf("with header: %d pages, %v", n, err)
	}
	if _, err := c.Convert(context.Background(), in, without, Options{Resolution: "fine", Now: now}); err != nil {
		t.Fatal(err)
	}
	hp, np := pages(t, with), pages(t, without)
	band := headerRows(196)
	blank := put(t, dir, "blank.txt", []byte(" \n"))
	var refs [][]byte
	for _, k := range []int{1, 2, 4, 6} { // first, second, a middle one, last
		literal := fmt.Sprintf("%s  %s  page %d/6  100%%", station, now.Format("2006-01-02 15:04"), k)
		ref := filepath.Join(dir, fmt.Sprintf("ref-%d.tif", k))
		if _, err := c.Convert(context.Background(), []Input{{Path: blank, Type: Text}}, ref, Options{Resolution: "fine", Header: literal, Now: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		rp := pages(t, ref)[0]
		if rp.ink(0, band) < 300 {
			t.Fatalf("reference header %q is (nearly) blank: %d pixels", literal, rp.ink(0, band))
		}
		if !bytes.Equal(hp[k-1].rows(0, band), rp.rows(0, band)) {
			t.Errorf("page %d: the header band is not %q", k, literal)
		}
		refs = append(refs, rp.rows(0, band))
	}
	for i := range refs {
		for j := i + 1; j < len(refs); j++ {
			if bytes.Equal(refs[i], refs[j]) {
				t.Errorf("reference headers %d and %d are identical: the numbers are not drawn", i, j)
			}
		}
	}
	for k := range hp {
		if np[k].ink(0, band) != 0 {
			t.Errorf("page %d without header: %d black pixels in the header band", k+1, np[k].ink(0, band))
		}
		if hp[k].ink(0, band) < 300 {
			t.Errorf("page %d: no header drawn", k+1)
		}
		if !bytes.Equal(hp[k].rows(band, hp[k].Height), np[k].rows(band, np[k].Height)) {
			t.Errorf("page %d: the header changed the page below its band", k+1)
		}
	}
}

// tooManyPagesPDF lists one page object listed times in its page tree,
// claiming count pages.
func tooManyPagesPDF(count int, listed int) []byte {
	var kids strings.Builder
	for i := 0; i < listed; i++ {
		kids.WriteString("3 0 R ")
	}
	return pdfFile([]string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", kids.String(), count),
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
	})
}

// pageTreeBomb is a PDF whose page tree lists one page 27000 times through
// three levels of 30 kids each.
func pageTreeBomb() []byte {
	k30 := func(ref string) string { return strings.Repeat(ref+" ", 30) }
	return pdfFile([]string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [" + k30("4 0 R") + "] /Count 27000 >>",
		"<< /Type /Page /Parent 5 0 R /MediaBox [0 0 612 792] >>",
		"<< /Type /Pages /Parent 2 0 R /Kids [" + k30("5 0 R") + "] /Count 900 >>",
		"<< /Type /Pages /Parent 4 0 R /Kids [" + k30("3 0 R") + "] /Count 30 >>",
	})
}

// pdfFile writes objects 1..n as a PDF with a correct xref table.
func pdfFile(objs []string) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	offs := make([]int, len(objs))
	for i, o := range objs {
		offs[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	x := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer << /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, x)
	return b.Bytes()
}

// bombPNG is a valid PNG header claiming w×h pixels over a tiny image.
func bombPNG(t *testing.T, w, h uint32) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 10, 10))); err != nil {
		t.Fatal(err)
	}
	p := b.Bytes()
	binary.BigEndian.PutUint32(p[16:], w)
	binary.BigEndian.PutUint32(p[20:], h)
	binary.BigEndian.PutUint32(p[29:], crc32.ChecksumIEEE(p[12:29]))
	return p
}

// TestHostileInputs: every bad document gets its sentinel error and code,
// quickly, and leaves no output and no temporary file.
func TestHostileInputs(t *testing.T) {
	c := conv(t)
	dir := t.TempDir()
	fax := testkit.FaxTIFF(t, 2)
	var ff strings.Builder
	for i := 0; i < 25; i++ {
		ff.WriteString("page\f")
	}
	goodPNG := images(t)["png-gray"]
	for _, tc := range []struct {
		name string
		data []byte
		typ  Type
		want error
		code failure.Code
	}{
		{"page-count bomb (500 kids)", tooManyPagesPDF(500, 500), PDF, ErrTooManyPages, failure.DocumentTooManyPages},
		{"page-count bomb (27000-page tree in 1 KB)", pageTreeBomb(), PDF, ErrTooManyPages, failure.DocumentTooManyPages},
		{"gigantic MediaBox", pdfFile([]string{"<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
			"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 10000000 10000000] >>"}), PDF, ErrTooLarge, failure.DocumentTooLarge},
		{"UserUnit giant", pdfFile([]string{"<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
			"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 14000 14000] /UserUnit 75000 >>"}), PDF, ErrTooLarge, failure.DocumentTooLarge},
		{"claims to be a PDF", []byte("%PDF-1.4\nthis is not really a pdf\n%%EOF\n"), PDF, ErrUnreadable, failure.DocumentUnreadable},
		{"truncated PDF", testkit.PDF(t, 2)[:300], PDF, ErrUnreadable, failure.DocumentUnreadable},
		{"zero bytes", nil, PDF, ErrUnreadable, failure.DocumentUnreadable},
		{"decompression-bomb PNG", bombPNG(t, 20000, 20000), PNG, ErrTooLarge, failure.DocumentTooLarge},
		{"PNG 1x100000", bombPNG(t, 1, 100000), PNG, ErrTooLarge, failure.DocumentTooLarge},
		{"corrupt PNG data", append(append([]byte(nil), goodPNG[:60]...), bytes.Repeat([]byte{0x55}, 200)...), PNG, ErrUnreadable, failure.DocumentUnreadable},
		{"broken TIFF", []byte("II*\x00\x08\x00\x00\x00\xff\xff"), TIFF, ErrUnreadable, failure.DocumentUnreadable},
		{"truncated fax TIFF", fax[:len(fax)*2/3], TIFF, ErrUnreadable, failure.DocumentUnreadable},
		{"text over MaxPages", []byte(ff.String()), Text, ErrTooManyPages, failure.DocumentTooManyPages},
		{"text with NUL later", append(bytes.Repeat([]byte("a"), 600), 0, 'b'), Text, ErrUnreadable, failure.DocumentUnreadable},
		{"ZIP", []byte("PK\x03\x04\x14\x00\x00\x00\x08\x00"), PDF, ErrUnsupported, failure.DocumentUnsupported},
		{"PNG declared as PDF", goodPNG, PDF, ErrUnreadable, failure.DocumentUnreadable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub := t.TempDir()
			in := put(t, sub, "in", tc.data)
			out := filepath.Join(sub, "out.tif")
			start := time.Now()
			n, err := c.Convert(context.Background(), []Input{{Path: in, Type: tc.typ}}, out, Options{Resolution: "fine", Header: "%n/%N", Now: now})
			if !errors.Is(err, tc.want) || Code(err) != tc.code || n != 0 {
				t.Errorf("Convert = %d, %v (code %s); want %v, %s", n, err, Code(err), tc.want, tc.code)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %s", d)
			}
			if extra := leftovers(t, sub, "in"); len(extra) > 0 {
				t.Errorf("left behind: %v", extra)
			}
			t.Logf("%v", err)
		})
	}
	// A missing input is document.missing; a job with no input is refused.
	if _, err := c.Convert(context.Background(), []Input{{Path: filepath.Join(dir, "nope.pdf"), Type: PDF}}, filepath.Join(dir, "o.tif"), Options{}); !errors.Is(err, ErrUnreadable) || Code(err) != failure.DocumentMissing {
		t.Errorf("missing file: %v (code %s)", err, Code(err))
	}
	if _, err := c.Convert(context.Background(), nil, filepath.Join(dir, "o.tif"), Options{}); !errors.Is(err, ErrUnreadable) {
		t.Errorf("no inputs: %v", err)
	}
	// Several documents whose pages add up to more than MaxPages: refused
	// before rendering, with the total.
	pdf := put(t, dir, "twelve.pdf", testkit.PDF(t, 12))
	_, err := c.Convert(context.Background(), []Input{{Path: pdf, Type: PDF}, {Path: pdf, Type: PDF}}, filepath.Join(dir, "o.tif"), Options{})
	if !errors.Is(err, ErrTooManyPages) || !strings.Contains(err.Error(), "24 pages") {
		t.Errorf("2×12 pages with MaxPages 20: %v", err)
	}
	if extra := leftovers(t, dir, "twelve.pdf"); len(extra) > 0 {
		t.Errorf("left behind: %v", extra)
	}
}

// gsProcessesIn lists running processes whose command line mentions dir.
func gsProcessesIn(dir string) []string {
	var found []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, []byte(dir)) {
			found = append(found, p+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return found
}

// TestLimits: the deadline kills ghostscript's whole process group and is
// ErrTimeout; the caller's cancellation is context.Canceled (retryable);
// the memory limit really applies to ghostscript.
func TestLimits(t *testing.T) {
	testkit.Require(t, "gs", "prlimit")
	dir := t.TempDir()
	big := densePDF(t, dir, 60)
	out := filepath.Join(dir, "o.tif")
	short := New(Config{Timeout: 300 * time.Millisecond, MaxPages: 100})
	start := time.Now()
	_, err := short.Convert(context.Background(), []Input{{Path: big, Type: PDF}}, out, Options{Resolution: "superfine", Header: "%n/%N", Now: now})
	if !errors.Is(err, ErrTimeout) || Code(err) != failure.DocumentTimeout || time.Since(start) > 5*time.Second {
		t.Errorf("slow conversion: %v after %s; want a timeout", err, time.Since(start))
	}
	if ps := gsProcessesIn(dir); len(ps) > 0 {
		t.Errorf("processes left running: %v", ps)
	}
	if extra := leftovers(t, dir, "dense.pdf", "dense.pdf.ps"); len(extra) > 0 {
		t.Errorf("left behind: %v", extra)
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	_, err = New(Config{MaxPages: 100}).Convert(ctx, []Input{{Path: big, Type: PDF}}, out, Options{Resolution: "superfine", Now: now})
	if !errors.Is(err, context.Canceled) || Code(err) != failure.Internal || !failure.Lookup(Code(err)).Retryable {
		t.Errorf("cancelled conversion: %v (code %s)", err, Code(err))
	}

	// 16 MB of address space is not enough for ghostscript to start: the
	// limit is in force, and the failure is clean.
	_, err = New(Config{MemoryMB: 16}).Convert(context.Background(), []Input{{Path: big, Type: PDF}}, out, Options{Now: now})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "memory limit") {
		t.Errorf("16 MB limit: %v; want ErrTooLarge naming the memory limit", err)
	}
	if extra := leftovers(t, dir, "dense.pdf", "dense.pdf.ps"); len(extra) > 0 {
		t.Errorf("left behind: %v", extra)
	}
	// No ghostscript: a clear, retryable internal error.
	_, err = New(Config{Ghostscript: "/nonexistent/gs"}).Convert(context.Background(), []Input{{Path: big, Type: PDF}}, out, Options{Now: now})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/gs is not installed") || Code(err) != failure.Internal {
		t.Errorf("missing ghostscript: %v (code %s)", err, Code(err))
	}
}

// TestConcurrent: one Converter used by several goroutines at once.
func TestConcurrent(t *testing.T) {
	c := conv(t)
	dir := t.TempDir()
	pdf := put(t, dir, "a.pdf", testkit.PDF(t, 2))
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			txt := put(t, dir, fmt.Sprintf("t%d.txt", i), []byte(strings.Repeat(fmt.Sprintf("job %d\n", i), i+1)))
			out := filepath.Join(dir, fmt.Sprintf("o%d.tif", i))
			n, err := c.Convert(context.Background(), []Input{{Path: txt, Type: Text}, {Path: pdf, Type: PDF}}, out, Options{Resolution: "standard", Header: "%n/%N", Now: now})
			if err == nil && n != 3 {
				err = fmt.Errorf("%d pages", n)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("job %d: %v", i, err)
		}
	}
}

// TestFaxTIFFPassesThrough: a fax TIFF that already has the requested
// geometry, with no header asked, is copied unchanged; otherwise rendered.
func TestFaxTIFFPassesThrough(t *testing.T) {
	c := conv(t)
	dir := t.TempDir()
	src := testkit.FaxTIFF(t, 2) // standard, 1078 rows: Letter
	in := put(t, dir, "fax.tif", src)
	out := filepath.Join(dir, "out.tif")
	n, err := c.Convert(context.Background(), []Input{{Path: in, Type: TIFF}}, out, Options{Resolution: "standard", PageSize: "letter", Now: now})
	got, _ := os.ReadFile(out)
	if err != nil || n != 2 || !bytes.Equal(got, src) {
		t.Fatalf("pass-through: %d %v, identical %v", n, err, bytes.Equal(got, src))
	}
	for _, o := range []Options{{Resolution: "standard", PageSize: "a4"}, {Resolution: "fine", PageSize: "letter"}, {Resolution: "standard", PageSize: "letter", Header: "x"}} {
		n, err = c.Convert(context.Background(), []Input{{Path: in, Type: TIFF}}, out, o)
		got, _ = os.ReadFile(out)
		_, rows, _ := Geometry(o.Resolution, o.PageSize)
		if err != nil || n != 2 || bytes.Equal(got, src) || pages(t, out)[0].Height != rows {
			t.Fatalf("%+v: %d %v, copied %v", o, n, err, bytes.Equal(got, src))
		}
	}
}

func TestToPDF(t *testing.T) {
	c := conv(t)
	testkit.Require(t, "pdfinfo")
	dir := t.TempDir()
	tif := filepath.Join(dir, "fax.tif")
	if _, err := c.Convert(context.Background(), []Input{{Path: put(t, dir, "a.pdf", testkit.PDF(t, 3)), Type: PDF}}, tif, Options{Resolution: "fine", Now: now}); err != nil {
		t.Fatal(err)
	}
	pdf := filepath.Join(dir, "fax.pdf")
	if err := ToPDF(context.Background(), tif, pdf); err != nil {
		t.Fatal(err)
	}
	info, err := exec.Command("pdfinfo", pdf).CombinedOutput()
	if err != nil || !regexp.MustCompile(`(?m)^Pages:\s+3$`).Match(info) {
		t.Fatalf("pdfinfo: %v\n%s", err, info)
	}
	// The PDF page is the fax page's size: 1728/204 in wide.
	if !regexp.MustCompile(`Page size:\s+609\.88\d* x 841\.`).Match(info) {
		t.Errorf("page size:\n%s", info)
	}
	// A broken TIFF: an error, and no PDF.
	bad := put(t, dir, "bad.tif", []byte("II*\x00\x08\x00\x00\x00\xff\xff"))
	if err := ToPDF(context.Background(), bad, filepath.Join(dir, "bad.pdf")); !errors.Is(err, ErrUnreadable) {
		t.Errorf("broken TIFF: %v", err)
	}
	if extra := leftovers(t, dir, "a.pdf", "fax.tif", "fax.pdf", "bad.tif"); len(extra) > 0 {
		t.Errorf("left behind: %v", extra)
	}
}

func TestSniff(t *testing.T) {
	for in, want := range map[string]Type{
		"%PDF-1.7\n": PDF, "II*\x00\x08": TIFF, "MM\x00*": TIFF, "\x89PNG\r\n\x1a\n": PNG, "\xff\xd8\xff\xe0": JPEG,
		"Hello\r\n\tworld\f": Text, "Grüße": Text, "cut rune \xe2\x98": Text,
	} {
		if got, err := Sniff([]byte(in)); got != want || err != nil {
			t.Errorf("Sniff(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"PK\x03\x04", "\x00\x01\x02", "\x7fELF", "text\x00nul", "bad utf8 \xff here", "esc \x1b[2J"} {
		if _, err := Sniff([]byte(in)); !errors.Is(err, ErrUnsupported) {
			t.Errorf("Sniff(%q) = %v; want ErrUnsupported", in, err)
		}
	}
	if _, err := Sniff(nil); !errors.Is(err, ErrUnreadable) {
		t.Errorf("Sniff(empty) = %v", err)
	}
	// Only the first SniffLen bytes count.
	if got, err := Sniff(append(bytes.Repeat([]byte("a"), SniffLen), 0)); got != Text || err != nil {
		t.Errorf("NUL after the window: %s %v", got, err)
	}
}

func TestCode(t *testing.T) {
	for err, want := range map[error]failure.Code{
		fmt.Errorf("x: %w", ErrUnreadable):                  failure.DocumentUnreadable,
		fmt.Errorf("x: %w", ErrTooManyPages):                failure.DocumentTooManyPages,
		fmt.Errorf("x: %w", ErrTimeout):                     failure.DocumentTimeout,
		fmt.Errorf("x: %w", ErrUnsupported):                 failure.DocumentUnsupported,
		fmt.Errorf("x: %w", ErrTooLarge):                    failure.DocumentTooLarge,
		fmt.Errorf("x: %w", context.Canceled):               failure.Internal,
		errors.New("disk on fire"):                          failure.Internal,
		fmt.Errorf("%w: %w", ErrUnreadable, os.ErrNotExist): failure.DocumentMissing,
	} {
		if got := Code(err); got != want || !failure.Known(got) {
			t.Errorf("Code(%v) = %s, want %s", err, got, want)
		}
	}
}

// densePDF makes an n-page PDF of full text pages (a typical letter).
func densePDF(t testing.TB, dir string, n int) string {
	var ps strings.Builder
	ps.WriteString("%!PS\n/Times-Roman findfont 11 scalefont setfont\n")
	for p := 1; p <= n; p++ {
		for l := 0; l < 60; l++ {
			fmt.Fprintf(&ps, "60 %d moveto (Page %d line %d: The quick brown fox jumps over the lazy dog, then files its tax return by fax.) show\n", 780-12*l, p, l+1)
		}
		ps.WriteString("showpage\n")
	}
	return gsMake(t, dir, "dense.pdf", ps.String(), "-sDEVICE=pdfwrite", "-sPAPERSIZE=a4")
}

// BenchmarkConvert compares Convert (page count, checks, header, one
// ghostscript run, check of the result) with plain `gs -sDEVICE=tiffg4` at
// the same geometry on the same 5-page text PDF, in interleaved rounds
// (the order rotating each round), and Convert with Config.Decode (every
// strip of the result decoded) beside them. It reports median milliseconds
// per page and the median of the per-round ratios (target ≤ 1.1).
func BenchmarkConvert(b *testing.B) {
	testkit.Require(b, "gs", "prlimit")
	dir := b.TempDir()
	pdf := densePDF(b, dir, 5)
	const pages = 5
	ydpi, rows, _ := Geometry("fine", "a4")
	plainArgs := []string{"-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=tiffg4", fmt.Sprintf("-r204x%d", ydpi), fmt.Sprintf("-g1728x%d", rows),
		"-dFIXEDMEDIA", "-dPDFFitPage", "-o", filepath.Join(dir, "plain.tif"), pdf}
	convert := func(c *Converter) func() time.Duration {
		return func() time.Duration {
			t0 := time.Now()
			n, err := c.Convert(context.Background(), []Input{{Path: pdf, Type: PDF}}, filepath.Join(dir, "ours.tif"),
				Options{Resolution: "fine", Header: "%station  %date  page %n/%N", StationID: "BENCH", Now: now})
			if err != nil || n != pages {
				b.Fatalf("Convert: %d %v", n, err)
			}
			return time.Since(t0)
		}
	}
	variants := []func() time.Duration{
		convert(New(Config{Timeout: time.Minute})),
		func() time.Duration {
			t0 := time.Now()
			if out, err := exec.Command("gs", plainArgs...).CombinedOutput(); err != nil {
				b.Fatalf("gs: %v %s", err, out)
			}
			return time.Since(t0)
		},
		convert(New(Config{Timeout: time.Minute, Decode: true})),
	}
	for _, v := range variants {
		v() // warm caches
	}
	rounds := max(20, b.N)
	times := make([][]time.Duration, len(variants))
	var ratio, ratioDecode []float64
	b.ResetTimer()
	for r := 0; r < rounds; r++ {
		var d [3]time.Duration
		for k := range variants {
			i := (k + r) % len(variants)
			d[i] = variants[i]()
			times[i] = append(times[i], d[i])
		}
		ratio = append(ratio, float64(d[0])/float64(d[1]))
		ratioDecode = append(ratioDecode, float64(d[2])/float64(d[1]))
	}
	b.StopTimer()
	median := func(x []float64) float64 {
		s := slices.Clone(x)
		slices.Sort(s)
		return s[len(s)/2]
	}
	perPage := func(d []time.Duration) float64 {
		ms := make([]float64, len(d))
		for i, x := range d {
			ms[i] = float64(x.Microseconds()) / 1000 / pages
		}
		return median(ms)
	}
	b.ReportMetric(perPage(times[0]), "ms/page")
	b.ReportMetric(perPage(times[1]), "gs-ms/page")
	b.ReportMetric(median(ratio), "ratio")
	b.ReportMetric(perPage(times[2]), "decode-ms/page")
	b.ReportMetric(median(ratioDecode), "decode-ratio")
	b.Logf("5-page text PDF, fine A4, %d interleaved rounds (medians): Convert %.1f ms/page, plain gs %.1f ms/page, ratio %.3f (target ≤ 1.1); with Config.Decode %.1f ms/page, ratio %.3f",
		rounds, perPage(times[0]), perPage(times[1]), median(ratio), perPage(times[2]), median(ratioDecode))
}
