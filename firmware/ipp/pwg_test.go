package ipp

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/faxbox/faxbox/internal/testkit"
)

// pwgHeader makes a page header of w×h pixels at dpi.
func pwgHeader(w, h, dpi, space, bits int) []byte {
	b := make([]byte, pwgHeaderSize)
	put := func(off, v int) { binary.BigEndian.PutUint32(b[off:], uint32(v)) }
	put(276, dpi)
	put(280, dpi)
	put(352, w*72/dpi)
	put(356, h*72/dpi)
	put(372, w)
	put(376, h)
	put(384, min(bits, 8))
	put(388, bits)
	put(392, (w*bits+7)/8)
	put(400, space)
	return b
}

// testRaster is one 10×4 sgray page: two lines of 5 black pixels, three
// literal grays and white; a white line; a line of literal pixels.
func testRaster() ([]byte, [][]byte) {
	var b bytes.Buffer
	b.WriteString(pwgSync)
	b.Write(pwgHeader(10, 4, 100, pwgSGray, 8))
	b.Write([]byte{1, 4, 0x00, 0xfe, 0x10, 0x20, 0x30, 128})
	b.Write([]byte{0, 128})
	b.Write([]byte{0, 0xf7, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	want := [][]byte{
		{0, 0, 0, 0, 0, 0x10, 0x20, 0x30, 0xff, 0xff},
		{0, 0, 0, 0, 0, 0x10, 0x20, 0x30, 0xff, 0xff},
		bytes.Repeat([]byte{0xff}, 10),
		{0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
	}
	return b.Bytes(), want
}

func TestDecodeLines(t *testing.T) {
	raster, want := testRaster()
	r := bufio.NewReader(bytes.NewReader(raster[4:]))
	h := make([]byte, pwgHeaderSize)
	r.Read(h)
	p, err := parsePWGHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	if err := decodeLines(r, p, func(l []byte) error { got = append(got, bytes.Clone(l)); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("lines\n got %v\nwant %v", got, want)
	}
}

// TestPWGToPDFRenders converts a raster and renders the PDF back with
// ghostscript at the raster's resolution: the pixels come back.
func TestPWGToPDFRenders(t *testing.T) {
	testkit.Require(t, "gs")
	dir := t.TempDir()
	raster, want := testRaster()
	in, pdf, pgm := filepath.Join(dir, "in.pwg"), filepath.Join(dir, "out.pdf"), filepath.Join(dir, "out.pgm")
	os.WriteFile(in, raster, 0o600)
	if err := PWGToPDF(in, pdf, 10); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pgmraw", "-r100", "-dInterpolateControl=0", "-o", pgm, pdf).CombinedOutput(); err != nil {
		t.Fatalf("gs: %v\n%s", err, b)
	}
	img, _ := os.ReadFile(pgm)
	var hdr []string // P5, width, height, maxval; comments skipped
	rest := img
	for len(hdr) < 4 {
		line, after, ok := bytes.Cut(rest, []byte("\n"))
		if !ok {
			t.Fatalf("bad PGM %q", img[:min(len(img), 40)])
		}
		if !bytes.HasPrefix(line, []byte("#")) {
			hdr = append(hdr, strings.Fields(string(line))...)
		}
		rest = after
	}
	w, h := 0, 0
	fmt.Sscan(hdr[1], &w)
	fmt.Sscan(hdr[2], &h)
	if w != 10 || h != 4 {
		t.Fatalf("rendered %dx%d", w, h)
	}
	pix := img[len(img)-w*h:]
	for y := range want {
		for x := range want[y] {
			if d := int(pix[y*w+x]) - int(want[y][x]); d > 8 || d < -8 {
				t.Fatalf("pixel %d,%d = %d, want %d", x, y, pix[y*w+x], want[y][x])
			}
		}
	}
}

func TestPWGRefused(t *testing.T) {
	dir := t.TempDir()
	good, _ := testRaster()
	color := append([]byte(pwgSync), pwgHeader(10, 4, 100, 6, 32)...) // CMYK
	huge := append([]byte(pwgSync), pwgHeader(30000, 30000, 300, pwgSGray, 8)...)
	twoPages := append(bytes.Clone(good), good[4:]...)
	for name, c := range map[string]struct {
		data  []byte
		pages int
	}{
		"no sync":        {[]byte("RaS3"), 10},
		"header cut":     {good[:100], 10},
		"data cut":       {good[:len(good)-3], 10},
		"cmyk":           {color, 10},
		"too large":      {huge, 10},
		"too many pages": {twoPages, 1},
		"no page":        {[]byte(pwgSync), 10},
	} {
		in := filepath.Join(dir, "in.pwg")
		os.WriteFile(in, c.data, 0o600)
		if err := PWGToPDF(in, filepath.Join(dir, "out.pdf"), c.pages); !errors.Is(err, ErrPWG) {
			t.Errorf("%s: %v, want ErrPWG", name, err)
		}
	}
	in := filepath.Join(dir, "in.pwg")
	os.WriteFile(in, twoPages, 0o600)
	if err := PWGToPDF(in, filepath.Join(dir, "out.pdf"), 2); err != nil {
		t.Errorf("two pages: %v", err)
	}
}
