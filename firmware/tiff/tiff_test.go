package tiff

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/internal/testkit"
)

func write(t testing.TB, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f.tif")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tiffcp rewrites a TIFF with libtiff's tiffcp (e.g. -B big-endian, -c lzw,
// -r rows per strip, -L LSB fill order).
func tiffcp(t testing.TB, src []byte, args ...string) []byte {
	t.Helper()
	testkit.Require(t, "tiffcp")
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.tif"), filepath.Join(dir, "out.tif")
	if err := os.WriteFile(in, src, 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("tiffcp", append(args, in, out)...).CombinedOutput(); err != nil {
		t.Fatalf("tiffcp %v: %v\n%s", args, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tiffinfo runs libtiff's tiffinfo and returns its output.
func tiffinfo(t testing.TB, path string) string {
	t.Helper()
	testkit.Require(t, "tiffinfo")
	b, err := exec.Command("tiffinfo", path).CombinedOutput()
	if err != nil {
		t.Fatalf("tiffinfo: %v\n%s", err, b)
	}
	return string(b)
}

// TestValidateRealFaxTIFF validates real G4 fax TIFFs made by ghostscript,
// in both byte orders, with one and many strips per page and both fill
// orders, and cross-checks what Info reports with libtiff's tiffinfo.
func TestValidateRealFaxTIFF(t *testing.T) {
	le := testkit.FaxTIFF(t, 3)
	variants := map[string][]byte{
		"little-endian":        le,
		"big-endian":           tiffcp(t, le, "-B"),
		"64 rows per strip":    tiffcp(t, le, "-r", "64"),
		"LSB fill order, BE":   tiffcp(t, le, "-B", "-L"),
		"big-endian, 7 rows/s": tiffcp(t, le, "-B", "-r", "7"),
	}
	if string(variants["big-endian"][:4]) != "MM\x00*" {
		t.Fatal("tiffcp -B did not write a big-endian TIFF")
	}
	for name, b := range variants {
		p := write(t, b)
		n, err := Validate(p, 1728)
		if err != nil || n != 3 {
			t.Fatalf("%s: Validate = %d, %v; want 3 pages", name, n, err)
		}
		pages, err := Info(p)
		if err != nil || len(pages) != 3 {
			t.Fatalf("%s: Info = %d pages, %v", name, len(pages), err)
		}
		if checked, err := Check(p, 1728); err != nil || len(checked) != 3 {
			t.Fatalf("%s: Check = %d pages, %v", name, len(checked), err)
		}
		for i, pg := range pages {
			x, y := pg.Resolution()
			if pg.Width != 1728 || pg.Height != 1078 || x != 204 || y != 98 || pg.Compression != CompressionG4 {
				t.Errorf("%s page %d: %+v", name, i+1, pg)
			}
		}
		if _, err := Validate(p, 1700); !errors.Is(err, ErrWidth) {
			t.Errorf("%s: wrong width accepted: %v", name, err)
		}
	}
	// libtiff agrees on what the walker found.
	info := tiffinfo(t, write(t, variants["big-endian, 7 rows/s"]))
	for _, want := range []string{"Image Width: 1728 Image Length: 1078", "Resolution: 204, 98 pixels/inch", "CCITT Group 4", "Rows/Strip: 7"} {
		if strings.Count(info, want) != 3 {
			t.Errorf("tiffinfo does not show %q on all 3 pages:\n%s", want, info)
		}
	}
	if strings.Count(info, "TIFF Directory") != 3 {
		t.Errorf("tiffinfo sees %d directories, we see 3", strings.Count(info, "TIFF Directory"))
	}
}

func TestOtherCompressionsAreReported(t *testing.T) {
	le := testkit.FaxTIFF(t, 1)
	for _, c := range []struct{ arg, name string }{{"lzw", "LZW"}, {"packbits", "PackBits"}, {"none", "none"}, {"g3", "G3"}} {
		p := write(t, tiffcp(t, le, "-c", c.arg))
		_, err := Validate(p, 1728)
		if !errors.Is(err, ErrCompression) || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%s: %v; want ErrCompression naming %s", c.arg, err, c.name)
		}
		// Structure is still readable, and its strips lie inside the file.
		b, _ := os.ReadFile(p)
		f, err := Parse(b)
		if err != nil || f.CheckStrips(0) != nil || f.Pages[0].Compression == CompressionG4 {
			t.Errorf("%s: Parse = %v", c.arg, err)
		}
	}
}

// referencedEnd is the end of the last byte the TIFF's structure points at
// (IFDs, out-of-line values, strips): any cut below it loses data.
func referencedEnd(t *testing.T, b []byte) int {
	f, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	end := 0
	for _, p := range f.Pages {
		for i, o := range p.StripOffsets {
			end = max(end, int(o+p.StripCounts[i]))
		}
	}
	off := binary.LittleEndian.Uint32(b[4:])
	for off != 0 {
		n := int(binary.LittleEndian.Uint16(b[off:]))
		e := int(off) + 2 + 12*n
		end = max(end, e+4)
		for i := 0; i < n; i++ {
			ent := b[int(off)+2+12*i:]
			typ, cnt := binary.LittleEndian.Uint16(ent[2:]), binary.LittleEndian.Uint32(ent[4:])
			size := map[uint16]int{1: 1, 2: 1, 3: 2, 4: 4, 5: 8}[typ] * int(cnt)
			if size > 4 {
				end = max(end, int(binary.LittleEndian.Uint32(ent[8:]))+size)
			}
		}
		off = binary.LittleEndian.Uint32(b[e:])
	}
	return end
}

// TestTruncatedIsRejected cuts a real 3-page fax TIFF at every byte below
// the end of what its structure references; every cut must fail validation
// (Asterisk would send it as fewer pages and report success).
func TestTruncatedIsRejected(t *testing.T) {
	b := testkit.FaxTIFF(t, 3)
	end := referencedEnd(t, b)
	if end != len(b) {
		t.Logf("the last %d bytes are not referenced by the structure", len(b)-end)
	}
	f, _ := Parse(b)
	path := filepath.Join(t.TempDir(), "cut.tif")
	for cut := 0; cut < end; cut++ {
		_, err := validate(b[:cut], "cut", 1728)
		if _, cerr := check(b[:cut], "cut", 1728); cerr == nil {
			t.Fatalf("a TIFF cut at byte %d of %d passed Check", cut, len(b))
		}
		if cut%97 == 0 { // and through the file API now and then
			if werr := os.WriteFile(path, b[:cut], 0o600); werr != nil {
				t.Fatal(werr)
			}
			_, err = Validate(path, 1728)
		}
		if err == nil {
			t.Fatalf("a TIFF cut at byte %d of %d validated", cut, len(b))
		}
		if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrNotTIFF) && !errors.Is(err, ErrNoPages) {
			t.Fatalf("cut at %d: %v, not a truncation error", cut, err)
		}
	}
	t.Logf("all %d cuts of a %d-byte TIFF rejected", end, len(b))

	// Strip data corrupted in the middle of page 2 (size kept).
	bad := append([]byte(nil), b...)
	off := f.Pages[1].StripOffsets[0] + f.Pages[1].StripCounts[0]/3
	for i := uint32(0); i < 40; i++ {
		bad[off+i] ^= 0xff
	}
	if _, err := Validate(write(t, bad), 1728); !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), "page 2") {
		t.Errorf("corrupted strip on page 2: %v", err)
	}
	// Check looks at structure only: it cannot see corrupt data.
	if pages, err := Check(write(t, bad), 1728); err != nil || len(pages) != 3 {
		t.Errorf("Check of an intact structure: %d pages, %v", len(pages), err)
	}
	// A page that claims more rows than its strips hold.
	long := append([]byte(nil), b...)
	patchTag(t, long, 0, tagLength, 1078+50)
	if _, err := Validate(write(t, long), 1728); !errors.Is(err, ErrTruncated) {
		t.Errorf("ImageLength beyond the data: %v", err)
	}
	if _, err := Validate(write(t, []byte("%PDF-1.4 not a tiff")), 1728); !errors.Is(err, ErrNotTIFF) {
		t.Errorf("PDF: %v", err)
	}
	if _, err := Validate(write(t, nil), 1728); !errors.Is(err, ErrNotTIFF) {
		t.Errorf("empty file: %v", err)
	}
}

// patchTag sets the inline LONG or SHORT value of tag in IFD number page of a
// little-endian TIFF.
func patchTag(t *testing.T, b []byte, page int, tag uint16, v uint32) {
	t.Helper()
	le := binary.LittleEndian
	off := le.Uint32(b[4:])
	for ; page > 0; page-- {
		off = le.Uint32(b[off+2+12*uint32(le.Uint16(b[off:])):])
	}
	n := le.Uint16(b[off:])
	for i := uint32(0); i < uint32(n); i++ {
		e := b[off+2+12*i:]
		if le.Uint16(e) == tag {
			if le.Uint16(e[2:]) == 3 {
				le.PutUint16(e[8:], uint16(v))
			} else {
				le.PutUint32(e[8:], v)
			}
			return
		}
	}
	t.Fatalf("tag %d not in IFD", tag)
}

// hostile builds small hand-made TIFFs that attack the IFD walker.
func hostile() map[string][]byte {
	le := binary.LittleEndian
	ifd := func(entries [][3]uint32, next uint32) []byte {
		b := le.AppendUint16(nil, uint16(len(entries)))
		for _, e := range entries {
			b = le.AppendUint16(b, uint16(e[0]))
			b = le.AppendUint16(b, 4) // LONG
			b = le.AppendUint32(b, e[1])
			b = le.AppendUint32(b, e[2])
		}
		return le.AppendUint32(b, next)
	}
	head := func(first uint32) []byte { return le.AppendUint32([]byte("II*\x00"), first) }
	basic := [][3]uint32{{tagWidth, 1, 1728}, {tagLength, 1, 10}, {tagCompression, 1, 4}, {tagStripOffsets, 1, 8}, {tagStripCounts, 1, 4}}
	return map[string][]byte{
		"IFD loop":            append(head(8), ifd(basic, 8)...),
		"two-IFD loop":        append(append(head(8), ifd(basic, 8+2+5*12+4)...), ifd(basic, 8)...),
		"pages share a strip": append(append(head(8), ifd(basic, 8+2+5*12+4)...), ifd(basic, 0)...),
		"IFD beyond the end":  head(1 << 30),
		"IFD in the header":   head(2),
		"next IFD beyond":     append(head(8), ifd(basic, 0xfffffff0)...),
		"zero entries":        append(head(8), 0, 0, 0, 0, 0, 0),
		"entries past end":    append(head(8), 0xff, 0xff, 1, 2, 3),
		"absurd value count":  append(head(8), ifd([][3]uint32{{tagStripOffsets, 0xfffffff0, 8}}, 0)...),
		"values past the end": append(head(8), ifd([][3]uint32{{tagStripOffsets, 1000, 8}}, 0)...),
		"strip past the end":  append(head(8), ifd([][3]uint32{{tagWidth, 1, 1728}, {tagLength, 1, 10}, {tagCompression, 1, 4}, {tagStripOffsets, 1, 8}, {tagStripCounts, 1, 1 << 30}}, 0)...),
		"no strips":           append(head(8), ifd([][3]uint32{{tagWidth, 1, 1728}, {tagLength, 1, 10}, {tagCompression, 1, 4}}, 0)...),
		"huge page":           append(head(8), ifd([][3]uint32{{tagWidth, 1, 1728}, {tagLength, 1, 1 << 31}, {tagCompression, 1, 4}, {tagStripOffsets, 1, 8}, {tagStripCounts, 1, 4}}, 0)...),
		"zero width":          append(head(8), ifd([][3]uint32{{tagWidth, 1, 0}, {tagLength, 1, 10}, {tagCompression, 1, 4}, {tagStripOffsets, 1, 8}, {tagStripCounts, 1, 4}}, 0)...),
		"garbage strip":       append(head(8), ifd(basic, 0)...),
		"big-endian garbage":  []byte("MM\x00*\x00\x00\x00\x08\xff\xff\xff\xff"),
		"short":               []byte("II*\x00\x08"),
	}
}

// TestHostileStructures: every malformed TIFF is refused with a sentinel
// error, quickly, without a panic.
func TestHostileStructures(t *testing.T) {
	// The structural attacks are caught by the walker itself.
	for name, want := range map[string]string{"IFD loop": "IFD loop", "two-IFD loop": "IFD loop", "pages share a strip": "strips overlap",
		"IFD beyond the end": "outside the file", "absurd value count": "values", "values past the end": "run past the end"} {
		if _, err := Parse(hostile()[name]); !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Parse = %v; want %q", name, err, want)
		}
	}
	for name, b := range hostile() {
		p := write(t, b)
		if _, err := Validate(p, 0); !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrNotTIFF) && !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: Validate = %v", name, err)
		}
		if _, err := Check(p, 0); err == nil && name != "garbage strip" {
			t.Errorf("%s: Check passed", name)
		}
		if _, err := Extract(p, filepath.Join(t.TempDir(), "x.tif"), 1); err == nil {
			t.Errorf("%s: Extract succeeded", name)
		}
	}
}

func TestExtract(t *testing.T) {
	b := testkit.FaxTIFF(t, 3)
	for name, src := range map[string][]byte{"little-endian": b, "big-endian multi-strip": tiffcp(t, b, "-B", "-r", "100")} {
		srcPath := write(t, src)
		dir := t.TempDir()
		dst := filepath.Join(dir, "rest.tif")
		n, err := Extract(srcPath, dst, 2)
		if err != nil || n != 2 {
			t.Fatalf("%s: Extract = %d, %v", name, n, err)
		}
		if m, err := Validate(dst, 1728); err != nil || m != 2 {
			t.Fatalf("%s: extracted TIFF: %d pages, %v", name, m, err)
		}
		orig, _ := Parse(src)
		out, _ := os.ReadFile(dst)
		got, _ := Parse(out)
		for i := 0; i < 2; i++ {
			os, _ := orig.strips(orig.Pages[i+1])
			gs, _ := got.strips(got.Pages[i])
			if len(os) != len(gs) || !bytes.Equal(bytes.Join(os, nil), bytes.Join(gs, nil)) {
				t.Fatalf("%s: page %d strips differ from the source's page %d", name, i+1, i+2)
			}
			ox, oy := orig.Pages[i+1].Resolution()
			gx, gy := got.Pages[i].Resolution()
			if ox != gx || oy != gy || got.Pages[i].Height != orig.Pages[i+1].Height {
				t.Fatalf("%s: page %d geometry changed", name, i+1)
			}
		}
		// The extracted pages are the source's pages 2 and 3, pixel for pixel.
		for i := 0; i < 2; i++ {
			a, err1 := orig.DecodeRows(i+1, 1078)
			c, err2 := got.DecodeRows(i, 1078)
			if err1 != nil || err2 != nil || !bytes.Equal(a, c) {
				t.Fatalf("%s: page %d pixels differ (%v %v)", name, i+1, err1, err2)
			}
		}
		// libtiff reads it too.
		info := tiffinfo(t, dst)
		if strings.Count(info, "TIFF Directory") != 2 || strings.Count(info, "CCITT Group 4") != 2 {
			t.Fatalf("%s: tiffinfo:\n%s", name, info)
		}
		// Out of range: an error, and dst is left as it was.
		for _, from := range []int{0, 4, -1} {
			if _, err := Extract(srcPath, dst, from); !errors.Is(err, ErrPageRange) {
				t.Fatalf("%s: extract from page %d: %v", name, from, err)
			}
		}
		if again, _ := os.ReadFile(dst); !bytes.Equal(again, out) {
			t.Fatalf("%s: a failed Extract changed dst", name)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Fatalf("%s: %d files in the output directory, want only rest.tif", name, len(ents))
		}
		// From page 1: every page.
		if n, err := Extract(srcPath, dst, 1); err != nil || n != 3 {
			t.Fatalf("%s: extract from page 1: %d %v", name, n, err)
		}
	}
	// A truncated source is refused, not cut.
	if _, err := Extract(write(t, b[:len(b)-100]), filepath.Join(t.TempDir(), "x.tif"), 2); !errors.Is(err, ErrTruncated) {
		t.Fatalf("truncated source: %v", err)
	}
}

// FuzzValidate feeds arbitrary bytes to the IFD walker, Check, the G4
// decoding and the writer. It must never panic; whatever validates must pass
// Check and survive a rewrite (Extract's writer) with the same page count.
func FuzzValidate(f *testing.F) {
	fax := testkit.FaxTIFF(f, 2)
	f.Add(fax)
	f.Add(tiffcp(f, fax, "-B", "-r", "64"))
	f.Add(tiffcp(f, fax, "-c", "lzw"))
	for _, b := range hostile() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, cerr := check(b, "fuzz", 0)
		file, err := validate(b, "fuzz", 0)
		if err == nil && cerr != nil {
			t.Fatalf("Validate passed, Check failed: %v", cerr)
		}
		if err != nil {
			if p, err := Parse(b); err == nil {
				for i := range p.Pages {
					p.CheckStrips(i)
					p.DecodeRows(i, 3)
				}
			}
			return
		}
		var pages []pageOf
		for _, p := range file.Pages {
			pages = append(pages, pageOf{file, p})
		}
		out, err := writePages(pages)
		if err != nil {
			t.Fatalf("write of a valid TIFF: %v", err)
		}
		again, err := validate(out, "rewritten", 0)
		if err != nil || len(again.Pages) != len(file.Pages) {
			t.Fatalf("rewritten TIFF: %v", err)
		}
	})
}

// BenchmarkValidate measures Validate (every strip decoded) beside Check
// (structure only) on a real 3-page standard-resolution fax TIFF.
func BenchmarkValidate(b *testing.B) {
	p := write(b, testkit.FaxTIFF(b, 3))
	rounds := max(20, b.N)
	var tv, tc time.Duration
	b.ResetTimer()
	for i := 0; i < rounds; i++ {
		t0 := time.Now()
		if n, err := Validate(p, 1728); err != nil || n != 3 {
			b.Fatal(n, err)
		}
		t1 := time.Now()
		if pages, err := Check(p, 1728); err != nil || len(pages) != 3 {
			b.Fatal(len(pages), err)
		}
		tv += t1.Sub(t0)
		tc += time.Since(t1)
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(rounds) / 3 }
	b.ReportMetric(per(tv), "validate-ms/page")
	b.ReportMetric(per(tc), "check-ms/page")
	b.Logf("3-page standard fax TIFF: Validate %.2f ms/page (all cores), Check %.3f ms/page", per(tv), per(tc))
}

func TestConcat(t *testing.T) {
	a := write(t, testkit.FaxTIFF(t, 3))
	b := write(t, tiffcp(t, testkit.FaxTIFF(t, 2), "-B", "-r", "100"))
	dst := filepath.Join(t.TempDir(), "batch.tif")
	n, err := Concat(dst, Part{Path: a, From: 2}, Part{Path: b, From: 1})
	if err != nil || n != 4 {
		t.Fatalf("Concat = %d, %v; want 4 pages (2 of a, 2 of b)", n, err)
	}
	if m, err := Validate(dst, 1728); err != nil || m != 4 {
		t.Fatalf("concatenated TIFF: %d pages, %v", m, err)
	}
	out, _ := os.ReadFile(dst)
	got, _ := Parse(out)
	for i, want := range []struct {
		path string
		page int
	}{{a, 1}, {a, 2}, {b, 0}, {b, 1}} {
		src, _ := os.ReadFile(want.path)
		f, _ := Parse(src)
		x, err1 := f.DecodeRows(want.page, 1078)
		y, err2 := got.DecodeRows(i, 1078)
		if err1 != nil || err2 != nil || !bytes.Equal(x, y) {
			t.Fatalf("page %d differs from its source (%v %v)", i+1, err1, err2)
		}
	}
	if info := tiffinfo(t, dst); strings.Count(info, "TIFF Directory") != 4 || !strings.Contains(info, "Page Number: 3-4") {
		t.Fatalf("tiffinfo:\n%s", info)
	}
	if _, err := Concat(dst, Part{Path: a, From: 1}, Part{Path: b, From: 3}); !errors.Is(err, ErrPageRange) {
		t.Fatalf("a part out of range: %v", err)
	}
	if _, err := Concat(dst); !errors.Is(err, ErrPageRange) {
		t.Fatalf("no parts: %v", err)
	}
}
