package ipp

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/faxbox/faxbox/firmware/convert"
)

// pwgSync starts a PWG raster stream (PWG 5102.4).
const pwgSync = "RaS2"

// pwgHeaderSize is the size of a page header.
const pwgHeaderSize = 1796

// PWG color spaces faxbox reads.
const (
	pwgBlack = 3
	pwgRGB   = 1
	pwgSGray = 18
	pwgSRGB  = 19
)

// ErrPWG is wrapped by every error of a raster faxbox cannot read.
var ErrPWG = errors.New("unreadable PWG raster")

// pwgPage is what faxbox uses of a page header.
type pwgPage struct {
	width, height int // pixels
	bitsPerColor  int
	bitsPerPixel  int
	bytesPerLine  int
	colorSpace    int
	xdpi, ydpi    int
}

func parsePWGHeader(h []byte) (pwgPage, error) {
	u := func(off int) int { return int(binary.BigEndian.Uint32(h[off:])) }
	p := pwgPage{xdpi: u(276), ydpi: u(280), width: u(372), height: u(376), bitsPerColor: u(384),
		bitsPerPixel: u(388), bytesPerLine: u(392), colorSpace: u(400)}
	bad := func(format string, a ...any) (pwgPage, error) {
		return p, fmt.Errorf("%w: "+format, append([]any{ErrPWG}, a...)...)
	}
	switch {
	case p.width <= 0 || p.height <= 0 || p.width > convert.MaxImageSide || p.height > convert.MaxImageSide ||
		p.width*p.height > convert.MaxImagePixels:
		return bad("page of %dx%d pixels (at most %d a side, %d megapixels)", p.width, p.height, convert.MaxImageSide, convert.MaxImagePixels/1_000_000)
	case p.xdpi < 50 || p.ydpi < 50 || p.xdpi > 2400 || p.ydpi > 2400:
		return bad("resolution %dx%d dpi", p.xdpi, p.ydpi)
	}
	switch {
	case (p.colorSpace == pwgSGray || p.colorSpace == pwgBlack) && p.bitsPerColor == 8 && p.bitsPerPixel == 8,
		p.colorSpace == pwgBlack && p.bitsPerColor == 1 && p.bitsPerPixel == 1,
		(p.colorSpace == pwgSRGB || p.colorSpace == pwgRGB) && p.bitsPerColor == 8 && p.bitsPerPixel == 24:
	default:
		return bad("color space %d with %d bits per pixel (black_1, sgray_8 and srgb_8 are read)", p.colorSpace, p.bitsPerPixel)
	}
	if p.bytesPerLine != (p.width*p.bitsPerPixel+7)/8 {
		return bad("%d bytes per line for %d pixels of %d bits", p.bytesPerLine, p.width, p.bitsPerPixel)
	}
	return p, nil
}

// PWGToPDF converts the PWG raster file in to a PDF at out: one page per
// raster page, as a gray image (1 bit for black_1, 8 bits else; color is
// turned to gray) at the page's size. More than maxPages pages is an error.
func PWGToPDF(in, out string, maxPages int) error {
	f, err := os.Open(in)
	if err != nil {
		return fmt.Errorf("ipp: open raster: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	sync := make([]byte, 4)
	if _, err := io.ReadFull(r, sync); err != nil || string(sync) != pwgSync {
		return fmt.Errorf("%w: no RaS2 sync word", ErrPWG)
	}
	o, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("ipp: create %s: %w", out, err)
	}
	pw := newPDFWriter(o)
	for n := 0; ; n++ {
		h := make([]byte, pwgHeaderSize)
		if _, err := io.ReadFull(r, h); err == io.EOF {
			break
		} else if err != nil {
			o.Close()
			return fmt.Errorf("%w: page %d: truncated header", ErrPWG, n+1)
		}
		if n == maxPages {
			o.Close()
			return fmt.Errorf("%w: more than %d pages", ErrPWG, maxPages)
		}
		p, err := parsePWGHeader(h)
		if err == nil {
			err = pw.page(r, p)
		}
		if err != nil {
			o.Close()
			return fmt.Errorf("page %d: %w", n+1, err)
		}
	}
	if pw.pages == 0 {
		o.Close()
		return fmt.Errorf("%w: no page", ErrPWG)
	}
	if err := pw.finish(); err != nil {
		o.Close()
		return fmt.Errorf("ipp: write %s: %w", out, err)
	}
	if err := o.Close(); err != nil {
		return fmt.Errorf("ipp: write %s: %w", out, err)
	}
	return nil
}

// decodeLines reads a page's compressed lines (PWG 5102.4: a line repeat
// count, then runs of repeated or literal pixels; 128 fills the line with
// white) and hands each line to emit.
func decodeLines(r *bufio.Reader, p pwgPage, emit func([]byte) error) error {
	unit := max(p.bitsPerPixel/8, 1)
	white := byte(0xff)
	if p.colorSpace == pwgBlack {
		white = 0
	}
	line := make([]byte, p.bytesPerLine)
	for y := 0; y < p.height; {
		rep, err := r.ReadByte()
		if err != nil {
			return fmt.Errorf("%w: truncated at line %d", ErrPWG, y)
		}
		if err := decodeLine(r, line, unit, white); err != nil {
			return fmt.Errorf("%w: line %d: %v", ErrPWG, y, err)
		}
		for i := 0; i <= int(rep) && y < p.height; i++ {
			if err := emit(line); err != nil {
				return err
			}
			y++
		}
	}
	return nil
}

func decodeLine(r *bufio.Reader, line []byte, unit int, white byte) error {
	for x := 0; x < len(line); {
		c, err := r.ReadByte()
		if err != nil {
			return err
		}
		switch {
		case c == 128:
			for ; x < len(line); x++ {
				line[x] = white
			}
		case c < 128:
			n := (int(c) + 1) * unit
			if x+n > len(line) {
				return errors.New("run past the end of the line")
			}
			if _, err := io.ReadFull(r, line[x:x+unit]); err != nil {
				return err
			}
			for i := unit; i < n; i++ {
				line[x+i] = line[x+i-unit]
			}
			x += n
		default:
			n := (257 - int(c)) * unit
			if x+n > len(line) {
				return errors.New("literal past the end of the line")
			}
			if _, err := io.ReadFull(r, line[x:x+n]); err != nil {
				return err
			}
			x += n
		}
	}
	return nil
}

// pdfWriter writes a PDF of image pages.
type pdfWriter struct {
	w       *bufio.Writer
	off     int64
	offsets map[int]int64
	next    int
	kids    []int
	pages   int
}

func newPDFWriter(w io.Writer) *pdfWriter {
	pw := &pdfWriter{w: bufio.NewWriter(w), offsets: map[int]int64{}, next: 3}
	pw.printf("%%PDF-1.4\n%%\xe2\xe3\xcf\xd3\n")
	return pw
}

func (pw *pdfWriter) printf(format string, a ...any) {
	n, _ := fmt.Fprintf(pw.w, format, a...)
	pw.off += int64(n)
}

func (pw *pdfWriter) object(n int, format string, a ...any) {
	pw.offsets[n] = pw.off
	pw.printf("%d 0 obj\n"+format+"\nendobj\n", append([]any{n}, a...)...)
}

// page adds one raster page read from r.
func (pw *pdfWriter) page(r *bufio.Reader, p pwgPage) error {
	var img bytes.Buffer
	z := zlib.NewWriter(&img)
	gray := make([]byte, p.width)
	err := decodeLines(r, p, func(line []byte) error {
		if p.bitsPerPixel != 24 {
			_, err := z.Write(line)
			return err
		}
		for x := range gray {
			rgb := line[3*x : 3*x+3]
			gray[x] = byte((299*int(rgb[0]) + 587*int(rgb[1]) + 114*int(rgb[2])) / 1000)
		}
		_, err := z.Write(gray)
		return err
	})
	if err != nil {
		return err
	}
	if err := z.Close(); err != nil {
		return err
	}
	// The page is as large as its pixels at their resolution (the header's
	// PageSize is rounded to whole points).
	wpt, hpt := float64(p.width)*72/float64(p.xdpi), float64(p.height)*72/float64(p.ydpi)
	bits, decode := 8, ""
	if p.bitsPerPixel == 1 {
		bits = 1
	}
	if p.colorSpace == pwgBlack {
		decode = " /Decode [1 0]"
	}
	imgN, contentN, pageN := pw.next, pw.next+1, pw.next+2
	pw.next += 3
	pw.offsets[imgN] = pw.off
	pw.printf("%d 0 obj\n<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent %d%s /Filter /FlateDecode /Length %d >>\nstream\n",
		imgN, p.width, p.height, bits, decode, img.Len())
	n, _ := pw.w.Write(img.Bytes())
	pw.off += int64(n)
	pw.printf("\nendstream\nendobj\n")
	content := fmt.Sprintf("q %.2f 0 0 %.2f 0 0 cm /Im0 Do Q", wpt, hpt)
	pw.object(contentN, "<< /Length %d >>\nstream\n%s\nendstream", len(content), content)
	pw.object(pageN, "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.2f %.2f] /Resources << /XObject << /Im0 %d 0 R >> >> /Contents %d 0 R >>",
		wpt, hpt, imgN, contentN)
	pw.kids = append(pw.kids, pageN)
	pw.pages++
	return nil
}

// finish writes the catalog, the page tree, the cross-reference table and
// the trailer.
func (pw *pdfWriter) finish() error {
	pw.object(1, "<< /Type /Catalog /Pages 2 0 R >>")
	var kids bytes.Buffer
	for _, k := range pw.kids {
		fmt.Fprintf(&kids, "%d 0 R ", k)
	}
	pw.object(2, "<< /Type /Pages /Kids [%s] /Count %d >>", kids.String(), pw.pages)
	xref := pw.off
	pw.printf("xref\n0 %d\n0000000000 65535 f \n", pw.next)
	for i := 1; i < pw.next; i++ {
		pw.printf("%010d 00000 n \n", pw.offsets[i])
	}
	pw.printf("trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", pw.next, xref)
	return pw.w.Flush()
}
