package convert

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // decoder
	_ "image/png"  // decoder
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// psString quotes s as a PostScript string for an ISO Latin-1 font:
// parentheses and backslashes escaped, Latin-1 letters as octal escapes,
// control characters and runes outside Latin-1 (and invalid UTF-8) as '?'.
// Nothing in s can end the string or run as PostScript.
func psString(s string) string {
	var b strings.Builder
	b.WriteByte('(')
	for _, r := range s {
		switch {
		case r == '(' || r == ')' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		case r >= 0xa0 && r <= 0xff:
			fmt.Fprintf(&b, "\\%03o", r)
		default:
			b.WriteByte('?')
		}
	}
	b.WriteByte(')')
	return b.String()
}

// hexString writes s byte for byte as a PostScript hex string (file paths).
func hexString(s string) string { return "<" + hex.EncodeToString([]byte(s)) + ">" }

// latin1Font defines /name as font re-encoded to ISO Latin-1.
func latin1Font(font, name string) string {
	return fmt.Sprintf("/%s findfont dup length dict begin {1 index /FID ne {def} {pop pop} ifelse} forall /Encoding ISOLatin1Encoding def currentdict end /%s exch definefont pop\n", font, name)
}

// Text layout: Courier 10 pt on 12 pt lines, 0.5 in margins, and room for
// the header line at the top.
const (
	textMargin = 36.0
	textSize   = 10.0
	textLead   = 12.0
	headerRoom = 16.0
	tabWidth   = 8
)

// paginate lays plain text out in pages of at most perPage lines of at
// most cols runes: lines wrapped at spaces when possible, tabs expanded,
// CR LF and lone CR as line ends, a form feed starts a new page. Empty text
// is one empty page.
func paginate(text string, cols, perPage int) [][]string {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")
	text = strings.TrimSuffix(text, "\n")
	var pages [][]string
	var cur []string
	flush := func() { pages = append(pages, cur); cur = nil }
	for _, line := range strings.Split(text, "\n") {
		for k, seg := range strings.Split(line, "\f") {
			if k > 0 {
				flush()
				if seg == "" {
					continue
				}
			}
			for _, w := range wrap(expandTabs(seg), cols) {
				if len(cur) == perPage {
					flush()
				}
				cur = append(cur, w)
			}
		}
	}
	if len(cur) > 0 || len(pages) == 0 {
		flush()
	}
	return pages
}

func expandTabs(s string) string {
	if !strings.Contains(s, "\t") {
		return s
	}
	var b strings.Builder
	col := 0
	for _, r := range s {
		if r == '\t' {
			n := tabWidth - col%tabWidth
			b.WriteString(strings.Repeat(" ", n))
			col += n
			continue
		}
		b.WriteRune(r)
		col++
	}
	return b.String()
}

// wrap splits a line into pieces of at most cols runes, at a space in the
// second half of the line when there is one.
func wrap(s string, cols int) []string {
	r := []rune(s)
	if len(r) <= cols {
		return []string{s}
	}
	var out []string
	for len(r) > cols {
		cut := cols
		for i := cols; i > cols/2; i-- {
			if r[i] == ' ' {
				cut = i
				break
			}
		}
		out = append(out, string(r[:cut]))
		r = r[cut:]
		for len(r) > 0 && r[0] == ' ' {
			r = r[1:]
		}
	}
	if len(r) > 0 {
		out = append(out, string(r))
	}
	return out
}

// textLayout returns the columns and lines per page for g.
func textLayout(g geom) (cols, perPage int) {
	cols = int((g.w - 2*textMargin) / (textSize * 0.6)) // Courier is 0.6 em wide
	perPage = int((g.h-2*textMargin-headerRoom)/textLead) + 1
	return cols, perPage
}

// textPS writes a plain-text file (UTF-8) as PostScript pages of g's size
// and returns the page count; more than maxPages pages is ErrTooManyPages
// (nothing written).
func textPS(src, dst string, g geom, maxPages int) (int, error) {
	raw, err := readCapped(src, maxTextBytes)
	if err != nil {
		return 0, err
	}
	if !utf8.Valid(raw) {
		return 0, fmt.Errorf("%w: the text is not valid UTF-8", ErrUnreadable)
	}
	for _, c := range raw {
		if c == 0 {
			return 0, fmt.Errorf("%w: the text holds NUL bytes", ErrUnreadable)
		}
	}
	cols, perPage := textLayout(g)
	pages := paginate(string(raw), cols, perPage)
	if len(pages) > maxPages {
		return 0, fmt.Errorf("%w: the text makes %d pages, at most %d allowed", ErrTooManyPages, len(pages), maxPages)
	}
	f, err := os.Create(dst)
	if err != nil {
		return 0, fmt.Errorf("convert: %w", err)
	}
	w := bufio.NewWriter(f)
	w.WriteString("%!PS\n" + latin1Font("Courier", "FBTextFont"))
	top := g.h - textMargin - headerRoom - textSize
	for _, p := range pages {
		fmt.Fprintf(w, "/FBTextFont findfont %g scalefont setfont\n", textSize)
		y := top
		for _, l := range p {
			if strings.TrimSpace(l) != "" {
				fmt.Fprintf(w, "%g %.2f moveto %s show\n", textMargin, y, psString(l))
			}
			y -= textLead
		}
		w.WriteString("showpage\n")
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, fmt.Errorf("convert: %w", err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("convert: %w", err)
	}
	return len(pages), nil
}

// Image layout: 0.25 in margins and room for the header.
const imageMargin = 18.0

// imagePS writes a PNG or JPEG as one PostScript page of g's size: the
// image in greyscale (transparency over white), scaled to fit inside the
// margins keeping its aspect ratio, centred horizontally, at the top. Its
// declared size is checked first (MaxImageSide, MaxImagePixels: a
// decompression bomb is ErrTooLarge before any pixel is decoded). Images
// larger than the fax's pixels are box-filtered down in Go; ghostscript
// scales the rest and dithers. The pixels go to ghostscript as raw bytes in
// dataPath.
func imagePS(src, psPath, dataPath string, g geom) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnreadable, err)
	}
	defer f.Close()
	cfg, format, err := image.DecodeConfig(f)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnreadable, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > MaxImageSide || cfg.Height > MaxImageSide || cfg.Width*cfg.Height > MaxImagePixels {
		return fmt.Errorf("%w: %s image of %dx%d pixels (at most %d a side and %d megapixels)", ErrTooLarge, format, cfg.Width, cfg.Height, MaxImageSide, MaxImagePixels/1_000_000)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("%w: %w", ErrUnreadable, err)
	}
	img, _, err := image.Decode(f)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnreadable, err)
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	availW, availH := g.w-2*imageMargin, g.h-2*imageMargin-headerRoom
	scale := min(availW/float64(w), availH/float64(h)) // points per image pixel
	dw, dh := float64(w)*scale, float64(h)*scale
	// Device pixels per image pixel, each way; average blocks of image
	// pixels down to at most one per device pixel.
	sx := max(1, int(1/(scale*xdpi/72)))
	sy := max(1, int(1/(scale*float64(g.ydpi)/72)))
	ow, oh := w/sx, h/sy
	if ow == 0 || oh == 0 {
		ow, oh, sx, sy = w, h, 1, 1
	}
	data := boxFilter(grayRows(img), w, h, sx, sy, ow, oh)
	if err := os.WriteFile(dataPath, data, 0o600); err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	ps := fmt.Sprintf(`%%!PS
gsave
%.3f %.3f translate %.3f %.3f scale
/DeviceGray setcolorspace
<< /ImageType 1 /Width %d /Height %d /BitsPerComponent 8 /Decode [0 1]
   /ImageMatrix [%d 0 0 -%d 0 %d] /DataSource %s (r) file /Interpolate false >> image
grestore
showpage
`, imageMargin+(availW-dw)/2, imageMargin+availH-dh, dw, dh, ow, oh, ow, oh, oh, hexString(dataPath))
	if err := os.WriteFile(psPath, []byte(ps), 0o600); err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	return nil
}

// grayRows returns a function that writes row y (0-based) of the image's
// luminance into dst (one byte per pixel), with transparent pixels
// composited over white. Common decoder outputs take fast paths; nothing
// the size of the whole image is allocated.
func grayRows(img image.Image) func(y int, dst []byte) {
	b := img.Bounds()
	w := b.Dx()
	switch m := img.(type) {
	case *image.Gray:
		return func(y int, dst []byte) { copy(dst, m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:w]) }
	case *image.YCbCr:
		return func(y int, dst []byte) { copy(dst, m.Y[m.YOffset(b.Min.X, b.Min.Y+y):][:w]) }
	case *image.NRGBA:
		return func(y int, dst []byte) {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := 0; x < w; x++ {
				p := row[x*4 : x*4+4]
				l := (19595*uint32(p[0]) + 38470*uint32(p[1]) + 7471*uint32(p[2]) + 1<<15) >> 16
				a := uint32(p[3])
				dst[x] = byte((l*a + 255*(255-a) + 127) / 255)
			}
		}
	case *image.RGBA: // premultiplied
		return func(y int, dst []byte) {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := 0; x < w; x++ {
				p := row[x*4 : x*4+4]
				l := (19595*uint32(p[0]) + 38470*uint32(p[1]) + 7471*uint32(p[2]) + 1<<15) >> 16
				dst[x] = byte(min(255, l+255-uint32(p[3])))
			}
		}
	case *image.Paletted:
		var lut [256]byte
		for i := range lut {
			lut[i] = 255
		}
		for i, c := range m.Palette {
			lut[i] = grayOverWhite(c)
		}
		return func(y int, dst []byte) {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := 0; x < w; x++ {
				dst[x] = lut[row[x]]
			}
		}
	}
	return func(y int, dst []byte) {
		for x := 0; x < w; x++ {
			dst[x] = grayOverWhite(img.At(b.Min.X+x, b.Min.Y+y))
		}
	}
}

// grayOverWhite is c's luminance composited over white.
func grayOverWhite(c color.Color) byte {
	r, g, b, a := c.RGBA() // premultiplied, 16 bit
	l := (19595*r + 38470*g + 7471*b + 1<<15) >> 16
	return byte(min(0xffff, l+0xffff-a) >> 8)
}

// boxFilter reads a w×h greyscale image row by row and averages sx×sy
// blocks of it into an ow×oh image.
func boxFilter(row func(y int, dst []byte), w, h, sx, sy, ow, oh int) []byte {
	out := make([]byte, ow*oh)
	line := make([]byte, w)
	sum := make([]uint32, ow)
	n := uint32(sx * sy)
	for oy := 0; oy < oh; oy++ {
		clear(sum)
		for y := oy * sy; y < (oy+1)*sy && y < h; y++ {
			row(y, line)
			for ox := 0; ox < ow; ox++ {
				var s uint32
				for _, v := range line[ox*sx : ox*sx+sx] {
					s += uint32(v)
				}
				sum[ox] += s
			}
		}
		for ox := range sum {
			out[oy*ow+ox] = byte((sum[ox] + n/2) / n)
		}
	}
	return out
}
