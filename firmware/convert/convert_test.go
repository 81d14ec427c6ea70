package convert

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/tiff"
	"github.com/faxbox/faxbox/internal/testkit"
	"golang.org/x/image/ccitt"
)

func put(t testing.TB, dir, name string, b []byte) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func conv(t *testing.T) *Converter {
	testkit.Require(t, "gs", "tiff2pdf", "prlimit")
	return New(Config{Timeout: time.Minute, MaxPages: 20})
}

var now = time.Date(2026, 11, 22, 9, 30, 0, 0, time.UTC)

func TestGeometry(t *testing.T) {
	c := conv(t)
	dir := t.TempDir()
	pdf := put(t, dir, "a.pdf", testkit.PDF(t, 1))
	for _, res := range []string{"standard", "fine", "superfine"} {
		for _, size := range []string{"a4", "letter", "legal"} {
			out := filepath.Join(dir, res+size+".tif")
			n, err := c.Convert(context.Background(), []Input{{pdf, PDF}}, out, Options{Resolution: res, PageSize: size, Now: now})
			if err != nil || n != 1 {
				t.Fatalf("%s/%s: %d %v", res, size, n, err)
			}
			b, _ := os.ReadFile(out)
			f, err := tiff.Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			ydpi, rows, _ := Geometry(res, size)
			p := f.Pages[0]
			x, y := p.Resolution()
			if p.Width != 1728 || p.Height != rows || x != 204 || int(y+0.5) != ydpi || p.Compression != 4 {
				t.Errorf("%s/%s: %dx%d at %vx%v compression %d; want 1728x%d at 204x%d G4", res, size, p.Width, p.Height, x, y, p.Compression, rows, ydpi)
			}
		}
	}
}

// topInk counts black pixels in the top band of page i (where the header goes).
func topInk(t *testing.T, path string, page, band int) int {
	b, _ := os.ReadFile(path)
	f, err := tiff.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	p := f.Pages[page]
	data := b[p.StripOffsets[0] : p.StripOffsets[0]+p.StripCounts[0]]
	r := ccitt.NewReader(bytes.NewReader(data), ccitt.MSB, ccitt.Group4, p.Width, min(p.RowsPerStrip, p.Height), &ccitt.Options{Invert: p.Photometric == 0})
	buf := make([]byte, (p.Width+7)/8*band)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatal(err)
	}
	ink := 0
	for _, x := range buf {
		for ; x != 0; x &= x - 1 {
			ink++
		}
	}
	// ccitt decodes with 1 = white unless inverted: count the minority.
	if ink > len(buf)*4 {
		ink = len(buf)*8 - ink
	}
	return ink
}

func TestHeaderAndNumberingAcrossFiles(t *testing.T) {
	c := conv(t)
	dir := t.TempDir()
	in := []Input{
		{put(t, dir, "a.txt", []byte("Cover page\n\fSecond page of the text\nÄrger (parentheses) \\ backslash\n")), Text},
		{put(t, dir, "b.pdf", testkit.PDF(t, 2)), PDF},
	}
	with := filepath.Join(dir, "with.tif")
	without := filepath.Join(dir, "without.tif")
	n, err := c.Convert(context.Background(), in, with, Options{Resolution: "fine", Header: "%station  %date  page %n/%N", StationID: "ACME 030", Now: now})
	if err != nil || n != 4 {
		t.Fatalf("with header: %d %v", n, err)
	}
	if _, err := c.Convert(context.Background(), in, without, Options{Resolution: "fine", Now: now}); err != nil {
		t.Fatal(err)
	}
	for p := 0; p < 4; p++ {
		h, plain := topInk(t, with, p, 24), topInk(t, without, p, 24)
		if h < 200 || plain != 0 {
			t.Errorf("page %d: %d black pixels in the header band with a header, %d without", p+1, h, plain)
		}
	}
	// The numbers differ from page to page: the bands are not identical.
	if topInk(t, with, 0, 24) == topInk(t, with, 3, 24) {
		b1, b4 := bandBytes(t, with, 0), bandBytes(t, with, 3)
		if bytes.Equal(b1, b4) {
			t.Error("pages 1 and 4 have the same header: page numbers are not drawn")
		}
	}
	// The text says what it should, checked by rendering back to text is not
	// possible here; check instead that ghostscript saw the header string.
	hdr := string(headerPS(Options{Header: "%station %date %n/%N (x)", StationID: "ACME", Now: now}))
	for _, want := range []string{"(ACME) show", "(2026-11-22 09:30) show", "cnt 1 add", "FaxboxTotal 12 string cvs show", `\(x\)`} {
		if !strings.Contains(hdr, want) {
			t.Errorf("header program lacks %q:\n%s", want, hdr)
		}
	}
}

func bandBytes(t *testing.T, path string, page int) []byte {
	b, _ := os.ReadFile(path)
	f, _ := tiff.Parse(b)
	p := f.Pages[page]
	data := b[p.StripOffsets[0] : p.StripOffsets[0]+p.StripCounts[0]]
	r := ccitt.NewReader(bytes.NewReader(data), ccitt.MSB, ccitt.Group4, p.Width, min(p.RowsPerStrip, p.Height), nil)
	buf := make([]byte, (p.Width+7)/8*24)
	io.ReadFull(r, buf)
	return buf
}

func TestEveryInputType(t *testing.T) {
	c := conv(t)
	dir := t.TempDir()
	img := image.NewRGBA(image.Rect(0, 0, 640, 480))
	for x := 0; x < 640; x++ {
		img.Set(x, x*3/4, color.Black)
	}
	var pb, jb bytes.Buffer
	png.Encode(&pb, img)
	jpeg.Encode(&jb, img, nil)
	fax := put(t, dir, "fax.tif", testkit.FaxTIFF(t, 2))
	// A TIFF in another compression and width: LZW, 800 px.
	lzw := filepath.Join(dir, "lzw.tif")
	if out, err := exec.Command("gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=tiffgray", "-sCompression=lzw", "-r96",
		"-g800x1000", "-o", lzw, put(t, dir, "x.pdf", testkit.PDF(t, 1))).CombinedOutput(); err != nil {
		t.Fatalf("gs: %v %s", err, out)
	}
	for _, c2 := range []struct {
		name  string
		in    Input
		pages int
	}{
		{"png", Input{put(t, dir, "a.png", pb.Bytes()), PNG}, 1},
		{"jpeg", Input{put(t, dir, "a.jpg", jb.Bytes()), JPEG}, 1},
		{"fax tiff", Input{fax, TIFF}, 2},
		{"lzw tiff", Input{lzw, TIFF}, 1},
		{"text", Input{put(t, dir, "a.txt", []byte(strings.Repeat("a long line of text that wraps around the page ", 400))), Text}, 0},
	} {
		out := filepath.Join(dir, c2.name+".tif")
		n, err := c.Convert(context.Background(), []Input{c2.in}, out, Options{Resolution: "standard", Header: "p %n", Now: now})
		if err != nil {
			t.Fatalf("%s: %v", c2.name, err)
		}
		if c2.pages > 0 && n != c2.pages || n == 0 {
			t.Errorf("%s: %d pages, want %d", c2.name, n, c2.pages)
		}
		if m, err := tiff.Validate(out, 1728); err != nil || m != n {
			t.Errorf("%s: output %d pages, %v", c2.name, m, err)
		}
	}
}

func TestHostileInputs(t *testing.T) {
	c := conv(t)
	dir := t.TempDir()
	var kids strings.Builder
	for i := 0; i < 500; i++ {
		kids.WriteString("3 0 R ")
	}
	bomb := "%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [" + kids.String() +
		"] /Count 500 >> endobj\n3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
	var hugePNG bytes.Buffer
	png.Encode(&hugePNG, image.NewGray(image.Rect(0, 0, 10, 10)))
	hp := hugePNG.Bytes()
	copy(hp[16:], []byte{0, 0, 0x4e, 0x20, 0, 0, 0x4e, 0x20}) // 20000x20000 claimed
	binary.BigEndian.PutUint32(hp[29:], crc32.ChecksumIEEE(hp[12:29]))
	for _, c2 := range []struct {
		name string
		in   Input
		want error
		code failure.Code
	}{
		{"page-count bomb", Input{put(t, dir, "bomb.pdf", []byte(bomb)), PDF}, ErrTooManyPages, failure.DocumentTooManyPages},
		{"not a PDF", Input{put(t, dir, "fake.pdf", []byte("%PDF-1.4 this is not really a pdf\n%%EOF")), PDF}, ErrUnreadable, failure.DocumentUnreadable},
		{"empty", Input{put(t, dir, "empty.pdf", nil), PDF}, ErrUnreadable, failure.DocumentUnreadable},
		{"huge PNG", Input{put(t, dir, "huge.png", hp), PNG}, ErrTooLarge, failure.DocumentTooLarge},
		{"broken TIFF", Input{put(t, dir, "b.tif", []byte("II*\x00\x08\x00\x00\x00\xff\xff")), TIFF}, ErrUnreadable, failure.DocumentUnreadable},
		{"missing", Input{filepath.Join(dir, "nope.pdf"), PDF}, ErrUnreadable, failure.DocumentUnreadable},
	} {
		out := filepath.Join(dir, "out.tif")
		_, err := c.Convert(context.Background(), []Input{c2.in}, out, Options{Resolution: "standard", Now: now})
		if !errors.Is(err, c2.want) || Code(err) != c2.code {
			t.Errorf("%s: %v (code %s); want %v", c2.name, err, Code(err), c2.want)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%s: output left behind", c2.name)
		}
	}
	// A conversion that outlives its deadline is killed (the whole process
	// group) and reported as a timeout.
	short := New(Config{Timeout: 20 * time.Millisecond, MaxPages: 100})
	big := put(t, dir, "big.pdf", testkit.PDF(t, 60))
	start := time.Now()
	_, err := short.Convert(context.Background(), []Input{{big, PDF}}, filepath.Join(dir, "o.tif"), Options{Resolution: "superfine", Now: now})
	if !errors.Is(err, ErrTimeout) || Code(err) != failure.DocumentTimeout || time.Since(start) > 5*time.Second {
		t.Errorf("slow conversion: %v after %s; want a timeout", err, time.Since(start))
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".convert-") {
			t.Errorf("work directory %s left behind", e.Name())
		}
	}
}

func TestSniff(t *testing.T) {
	for in, want := range map[string]Type{"%PDF-1.7": PDF, "II*\x00": TIFF, "MM\x00*": TIFF, "\x89PNG\r\n\x1a\n": PNG, "\xff\xd8\xff\xe0": JPEG, "Hello\n": Text, "Grüße": Text} {
		if got, err := Sniff([]byte(in)); got != want || err != nil {
			t.Errorf("Sniff(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"PK\x03\x04", "\x00\x01\x02", "\x7fELF"} {
		if _, err := Sniff([]byte(in)); !errors.Is(err, ErrUnsupported) {
			t.Errorf("Sniff(%q) = %v", in, err)
		}
	}
}

// BenchmarkConvert compares Convert (page count + header + validation) with
// plain `gs -sDEVICE=tiffg4` on the same 5-page PDF, interleaved in one run.
func BenchmarkConvert(b *testing.B) {
	testkit.Require(b, "gs", "prlimit")
	dir := b.TempDir()
	pdf := put(b, dir, "in.pdf", testkit.PDF(b, 5))
	c := New(Config{Timeout: time.Minute})
	const rounds = 8
	var ours, plain time.Duration
	for i := 0; i < rounds; i++ {
		t0 := time.Now()
		if _, err := c.Convert(context.Background(), []Input{{pdf, PDF}}, filepath.Join(dir, "ours.tif"), Options{Resolution: "fine", Header: "%station  %date  page %n/%N", StationID: "BENCH", Now: now}); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(t0)
		t0 = time.Now()
		if out, err := exec.Command("gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=tiffg4", "-r204x196", "-g1728x2291",
			"-dFIXEDMEDIA", "-dPDFFitPage", "-o", filepath.Join(dir, "plain.tif"), pdf).CombinedOutput(); err != nil {
			b.Fatalf("gs: %v %s", err, out)
		}
		plain += time.Since(t0)
	}
	perPage := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / rounds / 5 }
	b.ReportMetric(perPage(ours), "ms/page")
	b.ReportMetric(perPage(plain), "gs-ms/page")
	b.ReportMetric(float64(ours)/float64(plain), "ratio")
	b.Logf("5-page PDF, fine: faxbox %.1f ms/page, plain gs %.1f ms/page, ratio %.2f (target ≤ 1.1)", perPage(ours), perPage(plain), float64(ours)/float64(plain))
}

func TestFaxTIFFPassesThroughWithoutHeader(t *testing.T) {
	c := conv(t)
	dir := t.TempDir()
	src := testkit.FaxTIFF(t, 2)
	in := put(t, dir, "fax.tif", src)
	out := filepath.Join(dir, "out.tif")
	n, err := c.Convert(context.Background(), []Input{{in, TIFF}}, out, Options{Resolution: "standard", Now: now})
	got, _ := os.ReadFile(out)
	if err != nil || n != 2 || !bytes.Equal(got, src) {
		t.Fatalf("pass-through: %d %v, identical %v", n, err, bytes.Equal(got, src))
	}
	// At another resolution, or with a header, it is rendered.
	n, err = c.Convert(context.Background(), []Input{{in, TIFF}}, out, Options{Resolution: "fine", Now: now})
	got, _ = os.ReadFile(out)
	if err != nil || n != 2 || bytes.Equal(got, src) {
		t.Fatalf("fine from standard: %d %v", n, err)
	}
}
