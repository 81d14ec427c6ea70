package convert

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // decoder
	_ "image/png"  // decoder
	"os"
	"strings"
	"unicode/utf8"
)

// psString quotes s as a PostScript string in ISO Latin-1: parentheses and
// backslashes escaped, other bytes outside printable ASCII as octal, runes
// outside Latin-1 as '?'.
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

// latin1Font defines /name as font re-encoded to ISO Latin-1.
func latin1Font(font, name string) string {
	return fmt.Sprintf("/%s findfont dup length dict begin {1 index /FID ne {def} {pop pop} ifelse} forall /Encoding ISOLatin1Encoding def currentdict end /%s exch definefont pop\n", font, name)
}

// headerPS is the PostScript run before the documents: an EndPage procedure
// that draws the header on every page, numbering pages across all inputs
// (FaxboxTotal is the total the driver counted).
func headerPS(opt Options) []byte {
	var b strings.Builder
	if opt.Header == "" {
		return []byte(b.String())
	}
	b.WriteString(latin1Font("Helvetica", "FaxboxHeaderFont"))
	// The template becomes a list of show operations; %n is the running
	// page number (EndPage's count + 1).
	var ops strings.Builder
	h := opt.Header
	date := opt.Now.Format("2006-01-02 15:04")
	for len(h) > 0 {
		i := strings.IndexByte(h, '%')
		if i < 0 {
			ops.WriteString(psString(h) + " show ")
			break
		}
		if i > 0 {
			ops.WriteString(psString(h[:i]) + " show ")
		}
		h = h[i:]
		switch {
		case strings.HasPrefix(h, "%station"):
			ops.WriteString(psString(opt.StationID) + " show ")
			h = h[len("%station"):]
		case strings.HasPrefix(h, "%date"):
			ops.WriteString(psString(date) + " show ")
			h = h[len("%date"):]
		case strings.HasPrefix(h, "%n"):
			ops.WriteString("cnt 1 add 12 string cvs show ")
			h = h[2:]
		case strings.HasPrefix(h, "%N"):
			ops.WriteString("FaxboxTotal 12 string cvs show ")
			h = h[2:]
		default:
			ops.WriteString("(%) show ")
			h = h[1:]
		}
	}
	fmt.Fprintf(&b, `<< /EndPage { 2 dict begin /code exch def /cnt exch def
  code 0 eq {
    gsave initgraphics
    1 setgray 0 currentpagedevice /PageSize get 1 get 14 sub currentpagedevice /PageSize get 0 get 14 rectfill
    0 setgray /FaxboxHeaderFont findfont 9 scalefont setfont
    14 currentpagedevice /PageSize get 1 get 10 sub moveto
    %s
    grestore
  } if
  code 2 ne end } bind >> setpagedevice
`, ops.String())
	return []byte(b.String())
}

// textPS writes a plain-text file as paginated PostScript (Courier 10 pt,
// wrapped; a form feed starts a new page) and returns the page count.
func textPS(src, dst string, g geom) (int, error) {
	raw, err := os.ReadFile(src)
	if err != nil {
		return 0, err
	}
	if !utf8.Valid(raw) {
		return 0, fmt.Errorf("%w: the text is not UTF-8", ErrUnreadable)
	}
	const margin, size, lead = 42.0, 10.0, 12.0
	top := g.h - margin - 14 // below the header line
	cols := int((g.w - 2*margin) / (size * 0.6))
	perPage := int((top - margin) / lead)
	var pages [][]string
	var cur []string
	flush := func() { pages = append(pages, cur); cur = nil }
	text := strings.ReplaceAll(strings.ReplaceAll(string(raw), "\r\n", "\n"), "\t", "    ")
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		for {
			ff := strings.IndexByte(line, '\f')
			seg := line
			if ff >= 0 {
				seg = line[:ff]
			}
			for _, w := range wrap(seg, cols) {
				if len(cur) == perPage {
					flush()
				}
				cur = append(cur, w)
			}
			if ff < 0 {
				break
			}
			flush()
			line = line[ff+1:]
		}
	}
	if len(cur) > 0 || len(pages) == 0 {
		flush()
	}
	f, err := os.Create(dst)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriter(f)
	w.WriteString("%!PS\n" + latin1Font("Courier", "FaxboxText"))
	for _, p := range pages {
		fmt.Fprintf(w, "/FaxboxText findfont %g scalefont setfont\n", size)
		y := top
		for _, l := range p {
			fmt.Fprintf(w, "%g %g moveto %s show\n", margin, y, psString(l))
			y -= lead
		}
		w.WriteString("showpage\n")
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	return len(pages), f.Close()
}

// wrap splits a line into pieces of at most cols runes, at spaces when it can.
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
	return append(out, string(r))
}

// maxPixels bounds the images decoded (decompression bombs).
const maxPixels = 100_000_000

// imagePS writes a PNG or JPEG as one PostScript page: greyscale, scaled to
// fit the page inside the margins, keeping its aspect ratio.
func imagePS(src, dst string, g geom) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnreadable, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > 20000 || cfg.Height > 20000 || cfg.Width*cfg.Height > maxPixels {
		return fmt.Errorf("%w: image of %dx%d pixels", ErrTooLarge, cfg.Width, cfg.Height)
	}
	f.Seek(0, 0)
	img, _, err := image.Decode(f)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnreadable, err)
	}
	// Downscale to at most the page's pixels: more is wasted on a fax.
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	maxW, maxH := Width, g.rows*2
	step := 1
	for w/step > maxW || h/step > maxH {
		step++
	}
	ow, oh := w/step, h/step
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(out)
	const margin = 24.0
	availW, availH := g.w-2*margin, g.h-2*margin-14
	scale := min(availW/float64(ow), availH/float64(oh))
	dw, dh := float64(ow)*scale, float64(oh)*scale
	fmt.Fprintf(bw, "%%!PS\ngsave %g %g translate %g %g scale\n", margin+(availW-dw)/2, margin+(availH-dh), dw, dh)
	fmt.Fprintf(bw, "%d %d 8 [%d 0 0 -%d 0 %d] currentfile /ASCIIHexDecode filter image\n", ow, oh, ow, oh, oh)
	const hex = "0123456789abcdef"
	n := 0
	for y := 0; y < oh; y++ {
		for x := 0; x < ow; x++ {
			c := color.GrayModel.Convert(img.At(b.Min.X+x*step, b.Min.Y+y*step)).(color.Gray)
			bw.WriteByte(hex[c.Y>>4])
			bw.WriteByte(hex[c.Y&15])
			if n++; n%40 == 0 {
				bw.WriteByte('\n')
			}
		}
	}
	bw.WriteString(">\ngrestore showpage\n")
	if err := bw.Flush(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
