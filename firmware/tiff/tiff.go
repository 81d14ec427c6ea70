// Package tiff reads and checks fax TIFFs (TIFF-F: bilevel, CCITT T.6/G4)
// in pure Go, without external tools, and cuts a multi-page TIFF at a page
// for resuming a fax.
//
// Contracts:
//
//   - Parse/Info walk every IFD (image file directory) of a TIFF in either
//     byte order. They never panic and never allocate more than the input
//     justifies: IFD loops, offsets outside the file, value arrays running
//     past the end and absurd counts are reported as ErrTruncated.
//   - Check additionally checks every page of a fax TIFF without decoding:
//     the width, G4 compression, 1 bit per pixel, sane dimensions, and
//     strips that cover the rows, lie inside the file and do not overlap. A
//     TIFF truncated anywhere fails.
//   - Validate does what Check does and decodes every strip of every page
//     with golang.org/x/image/ccitt, checking the decoded row count against
//     ImageLength. A TIFF truncated anywhere, or with corrupt strip data,
//     fails: Asterisk would otherwise send the readable pages and report
//     SUCCESS. It costs a few milliseconds per page.
//   - Extract writes a new TIFF-F holding a tail of the pages, strips copied
//     byte for byte, atomically (temporary file, fsync, rename).
//
// Every error wraps one of the sentinel errors below and names the file and
// page it concerns.
package tiff

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"

	"github.com/faxbox/faxbox/internal/atomicfile"
	"golang.org/x/image/ccitt"
)

// Sentinel errors; the returned errors wrap them with context.
var (
	ErrNotTIFF     = errors.New("tiff: not a TIFF file")
	ErrTruncated   = errors.New("tiff: truncated or corrupt")
	ErrWidth       = errors.New("tiff: wrong page width")
	ErrCompression = errors.New("tiff: not CCITT G4 (T.6) compressed")
	ErrNoPages     = errors.New("tiff: no pages")
	ErrPageRange   = errors.New("tiff: page out of range")
	ErrTooLarge    = errors.New("tiff: page dimensions too large")
)

// Tags used here.
const (
	tagSubfileType  = 254
	tagWidth        = 256
	tagLength       = 257
	tagBits         = 258
	tagCompression  = 259
	tagPhotometric  = 262
	tagFillOrder    = 266
	tagStripOffsets = 273
	tagSamples      = 277
	tagRowsPerStrip = 278
	tagStripCounts  = 279
	tagXRes         = 282
	tagYRes         = 283
	tagT6Options    = 293
	tagResUnit      = 296
	tagPageNumber   = 297
)

// Compression values (TIFF 6.0 and common extensions).
const (
	CompressionNone     = 1
	CompressionCCITTRLE = 2
	CompressionG3       = 3
	CompressionG4       = 4
	CompressionLZW      = 5
	CompressionOJPEG    = 6
	CompressionJPEG     = 7
	CompressionDeflate  = 8
	CompressionPackBits = 32773
)

// Limits of the walker. A fax has at most a few hundred pages of at most a
// few thousand rows; the limits are far above that and far below what could
// exhaust memory.
const (
	MaxPages  = 10000   // IFDs walked before the file is refused
	MaxSide   = 65535   // pixels, either dimension, any compression
	maxValues = 1 << 20 // values of one tag
	// G4 pages decoded by Decode: A4 at 1200 dpi fits, and the decoding time
	// of a hostile page stays bounded.
	MaxG4Width  = 10000
	MaxG4Height = 30000
)

// CompressionName returns a readable name of a TIFF compression value.
func CompressionName(c int) string {
	switch c {
	case CompressionNone:
		return "none"
	case CompressionCCITTRLE:
		return "CCITT RLE"
	case CompressionG3:
		return "CCITT G3 (T.4)"
	case CompressionG4:
		return "CCITT G4 (T.6)"
	case CompressionLZW:
		return "LZW"
	case CompressionOJPEG, CompressionJPEG:
		return "JPEG"
	case CompressionDeflate, 32946:
		return "Deflate"
	case CompressionPackBits:
		return "PackBits"
	}
	return fmt.Sprintf("compression %d", c)
}

// Page describes one image (IFD). Unset tags hold the TIFF defaults.
type Page struct {
	Width, Height   int
	BitsPerSample   int
	SamplesPerPixel int
	Compression     int
	Photometric     int
	FillOrder       int
	RowsPerStrip    int
	T6Options       int
	XRes, YRes      [2]uint32 // rationals (numerator, denominator)
	ResUnit         int       // 1 none, 2 inch, 3 centimetre
	StripOffsets    []uint32
	StripCounts     []uint32
}

// Resolution returns the page's resolution in dots per inch (0 when unset).
func (p Page) Resolution() (x, y float64) {
	r := func(v [2]uint32) float64 {
		if v[1] == 0 {
			return 0
		}
		d := float64(v[0]) / float64(v[1])
		if p.ResUnit == 3 {
			d *= 2.54
		}
		return d
	}
	return r(p.XRes), r(p.YRes)
}

// File is a parsed TIFF held in memory.
type File struct {
	data  []byte
	order binary.ByteOrder
	Pages []Page
}

// Parse walks every IFD of b and returns the pages. It checks structure only
// (offsets, counts, loops), not image data: see Decode.
func Parse(b []byte) (*File, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("%w: %d bytes", ErrNotTIFF, len(b))
	}
	var order binary.ByteOrder
	switch string(b[:4]) {
	case "II*\x00":
		order = binary.LittleEndian
	case "MM\x00*":
		order = binary.BigEndian
	default:
		return nil, ErrNotTIFF
	}
	f := &File{data: b, order: order}
	off := order.Uint32(b[4:8])
	seen := map[uint32]bool{}
	for off != 0 {
		if len(f.Pages) >= MaxPages {
			return nil, fmt.Errorf("%w: more than %d pages", ErrTruncated, MaxPages)
		}
		if seen[off] {
			return nil, fmt.Errorf("%w: IFD loop at offset %d", ErrTruncated, off)
		}
		seen[off] = true
		p, next, err := f.ifd(off)
		if err != nil {
			return nil, fmt.Errorf("page %d: %w", len(f.Pages)+1, err)
		}
		f.Pages = append(f.Pages, p)
		off = next
	}
	if len(f.Pages) == 0 {
		return nil, ErrNoPages
	}
	if err := f.disjointStrips(); err != nil {
		return nil, err
	}
	return f, nil
}

// disjointStrips refuses strips that overlap: a real TIFF never shares
// image data, and a hostile one could make thousands of pages decode the
// same strip.
func (f *File) disjointStrips() error {
	type span struct{ off, end uint64 }
	var spans []span
	for _, p := range f.Pages {
		for i, o := range p.StripOffsets {
			if i < len(p.StripCounts) && p.StripCounts[i] > 0 {
				spans = append(spans, span{uint64(o), uint64(o) + uint64(p.StripCounts[i])})
			}
		}
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.off, b.off) })
	for i := 1; i < len(spans); i++ {
		if spans[i].off < spans[i-1].end {
			return fmt.Errorf("%w: strips overlap at byte %d", ErrTruncated, spans[i].off)
		}
	}
	return nil
}

// Info reads path and returns the description of every page (structure
// only, as Parse).
func Info(path string) ([]Page, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tiff: %w", err)
	}
	f, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("tiff: %s: %w", filepath.Base(path), err)
	}
	return f.Pages, nil
}

func (f *File) ifd(off uint32) (Page, uint32, error) {
	b, o := f.data, f.order
	if off < 8 || uint64(off)+2 > uint64(len(b)) {
		return Page{}, 0, fmt.Errorf("%w: IFD offset %d outside the file (%d bytes)", ErrTruncated, off, len(b))
	}
	n := int(o.Uint16(b[off:]))
	end := uint64(off) + 2 + uint64(n)*12 + 4
	if n == 0 || end > uint64(len(b)) {
		return Page{}, 0, fmt.Errorf("%w: IFD at %d with %d entries runs past the end", ErrTruncated, off, n)
	}
	p := Page{Compression: 1, FillOrder: 1, ResUnit: 2, BitsPerSample: 1, SamplesPerPixel: 1}
	for i := 0; i < n; i++ {
		e := b[uint64(off)+2+uint64(i)*12:]
		tag, typ, count := o.Uint16(e), o.Uint16(e[2:]), o.Uint32(e[4:])
		switch tag {
		case tagWidth, tagLength, tagBits, tagCompression, tagPhotometric, tagFillOrder,
			tagStripOffsets, tagSamples, tagRowsPerStrip, tagStripCounts, tagXRes, tagYRes,
			tagT6Options, tagResUnit:
		default:
			continue // not needed: not even read
		}
		vals, err := f.values(typ, count, e[8:12])
		if err != nil {
			return Page{}, 0, fmt.Errorf("tag %d: %w", tag, err)
		}
		first := uint32(0)
		if len(vals) > 0 {
			first = vals[0]
		}
		switch tag {
		case tagWidth:
			p.Width = int(first)
		case tagLength:
			p.Height = int(first)
		case tagBits:
			p.BitsPerSample = int(first)
		case tagCompression:
			p.Compression = int(first)
		case tagPhotometric:
			p.Photometric = int(first)
		case tagFillOrder:
			p.FillOrder = int(first)
		case tagRowsPerStrip:
			p.RowsPerStrip = int(first)
		case tagStripOffsets:
			p.StripOffsets = vals
		case tagStripCounts:
			p.StripCounts = vals
		case tagSamples:
			p.SamplesPerPixel = int(first)
		case tagT6Options:
			p.T6Options = int(first)
		case tagResUnit:
			p.ResUnit = int(first)
		case tagXRes:
			if len(vals) >= 2 {
				p.XRes = [2]uint32{vals[0], vals[1]}
			}
		case tagYRes:
			if len(vals) >= 2 {
				p.YRes = [2]uint32{vals[0], vals[1]}
			}
		}
	}
	if p.RowsPerStrip <= 0 || p.RowsPerStrip > p.Height {
		p.RowsPerStrip = p.Height
	}
	return p, o.Uint32(b[end-4:]), nil
}

// values reads an entry's values: BYTE, SHORT, LONG, and RATIONAL as two
// LONGs per value. Other types read as nothing. The values must lie inside
// the file, so an entry cannot claim more than the file holds.
func (f *File) values(typ uint16, count uint32, inline []byte) ([]uint32, error) {
	var size uint64
	switch typ {
	case 1:
		size = 1
	case 3:
		size = 2
	case 4:
		size = 4
	case 5:
		size = 8
	default:
		return nil, nil
	}
	if count > maxValues {
		return nil, fmt.Errorf("%w: %d values", ErrTruncated, count)
	}
	total := size * uint64(count)
	src := inline
	if total > 4 {
		off := uint64(f.order.Uint32(inline))
		if off+total > uint64(len(f.data)) {
			return nil, fmt.Errorf("%w: %d values at %d run past the end", ErrTruncated, count, off)
		}
		src = f.data[off : off+total]
	}
	n := uint64(count)
	if typ == 5 {
		n *= 2
	}
	out := make([]uint32, 0, n)
	for i := uint64(0); i < uint64(count); i++ {
		switch typ {
		case 1:
			out = append(out, uint32(src[i]))
		case 3:
			out = append(out, uint32(f.order.Uint16(src[i*2:])))
		case 4:
			out = append(out, f.order.Uint32(src[i*4:]))
		case 5:
			out = append(out, f.order.Uint32(src[i*8:]), f.order.Uint32(src[i*8+4:]))
		}
	}
	return out, nil
}

// strips returns the page's strips, checked against the file size.
func (f *File) strips(p Page) ([][]byte, error) {
	if len(p.StripOffsets) == 0 || len(p.StripOffsets) != len(p.StripCounts) {
		return nil, fmt.Errorf("%w: %d strip offsets, %d byte counts", ErrTruncated, len(p.StripOffsets), len(p.StripCounts))
	}
	out := make([][]byte, len(p.StripOffsets))
	for i, off := range p.StripOffsets {
		end := uint64(off) + uint64(p.StripCounts[i])
		if end > uint64(len(f.data)) {
			return nil, fmt.Errorf("%w: strip %d ends at byte %d, the file has %d", ErrTruncated, i, end, len(f.data))
		}
		out[i] = f.data[off:end]
	}
	return out, nil
}

// CheckStrips checks that page i's strips lie inside the file (any
// compression): a truncated file fails.
func (f *File) CheckStrips(i int) error {
	if i < 0 || i >= len(f.Pages) {
		return fmt.Errorf("%w: page %d of %d", ErrPageRange, i+1, len(f.Pages))
	}
	p := f.Pages[i]
	if p.Width <= 0 || p.Height <= 0 || p.Width > MaxSide || p.Height > MaxSide {
		return fmt.Errorf("%w: %dx%d pixels", ErrTooLarge, p.Width, p.Height)
	}
	_, err := f.strips(p)
	return err
}

// Decode decompresses every strip of page i (0-based) and checks that they
// hold exactly ImageLength rows of ImageWidth pixels. Pages that are not
// bilevel CCITT G4 fail with ErrCompression.
func (f *File) Decode(i int) error {
	if i < 0 || i >= len(f.Pages) {
		return fmt.Errorf("%w: page %d of %d", ErrPageRange, i+1, len(f.Pages))
	}
	p := f.Pages[i]
	if err := f.checkG4Page(p, 0); err != nil {
		return err
	}
	strips, _ := f.strips(p)
	order := ccitt.MSB
	if p.FillOrder == 2 {
		order = ccitt.LSB
	}
	rowBytes := int64((p.Width + 7) / 8)
	rows := p.Height
	for s, data := range strips {
		h := min(p.RowsPerStrip, rows)
		if h <= 0 {
			return fmt.Errorf("%w: strip %d is beyond the page's %d rows", ErrTruncated, s, p.Height)
		}
		r := ccitt.NewReader(bytes.NewReader(data), order, ccitt.Group4, p.Width, h, nil)
		n, err := io.Copy(io.Discard, r)
		if err != nil {
			return fmt.Errorf("%w: strip %d: %v", ErrTruncated, s, err)
		}
		if n != rowBytes*int64(h) {
			return fmt.Errorf("%w: strip %d decodes to %d rows, want %d", ErrTruncated, s, n/rowBytes, h)
		}
		rows -= h
	}
	if rows != 0 {
		return fmt.Errorf("%w: the strips hold %d rows fewer than the page's %d", ErrTruncated, rows, p.Height)
	}
	return nil
}

// DecodeRows decodes the first n rows of page i into a packed bitmap
// (1 bit per pixel, MSB first, rows padded to whole bytes, 1 = black
// whatever the page's Photometric says). It is meant for tests and tools
// that look at page content.
func (f *File) DecodeRows(i, n int) ([]byte, error) {
	if err := f.Decode(i); err != nil {
		return nil, err
	}
	p := f.Pages[i]
	n = min(n, p.Height)
	strips, _ := f.strips(p)
	order := ccitt.MSB
	if p.FillOrder == 2 {
		order = ccitt.LSB
	}
	rowBytes := (p.Width + 7) / 8
	out := make([]byte, 0, rowBytes*n)
	rows := p.Height
	for _, data := range strips {
		if len(out) >= rowBytes*n {
			break
		}
		h := min(p.RowsPerStrip, rows)
		// ccitt decodes with 1 = white unless inverted; WhiteIsZero
		// (Photometric 0), the fax default, is the inverted case.
		r := ccitt.NewReader(bytes.NewReader(data), order, ccitt.Group4, p.Width, h, &ccitt.Options{Invert: p.Photometric == 0})
		buf := make([]byte, rowBytes*min(h, n-len(out)/rowBytes))
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrTruncated, err)
		}
		out = append(out, buf...)
		rows -= h
	}
	return out, nil
}

// check checks b's structure as Check does (name is for messages only).
func check(b []byte, name string, width int) (*File, error) {
	f, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("tiff: %s: %w", name, err)
	}
	for i, p := range f.Pages {
		if err := f.checkG4Page(p, width); err != nil {
			return nil, fmt.Errorf("tiff: %s page %d: %w", name, i+1, err)
		}
	}
	return f, nil
}

// checkG4Page checks one page's tags and strip layout, without decoding.
func (f *File) checkG4Page(p Page, width int) error {
	if width > 0 && p.Width != width {
		return fmt.Errorf("%w: %d px, want %d", ErrWidth, p.Width, width)
	}
	if p.Compression != CompressionG4 {
		return fmt.Errorf("%w: %s", ErrCompression, CompressionName(p.Compression))
	}
	if p.BitsPerSample != 1 || p.SamplesPerPixel != 1 {
		return fmt.Errorf("%w: G4 page with %d samples of %d bits", ErrTruncated, p.SamplesPerPixel, p.BitsPerSample)
	}
	if p.Width <= 0 || p.Height <= 0 || p.Width > MaxG4Width || p.Height > MaxG4Height {
		return fmt.Errorf("%w: %dx%d pixels (G4 pages up to %dx%d)", ErrTooLarge, p.Width, p.Height, MaxG4Width, MaxG4Height)
	}
	if _, err := f.strips(p); err != nil {
		return err
	}
	if want := (p.Height + p.RowsPerStrip - 1) / p.RowsPerStrip; len(p.StripOffsets) != want {
		return fmt.Errorf("%w: %d strips for %d rows of %d", ErrTruncated, len(p.StripOffsets), p.Height, p.RowsPerStrip)
	}
	return nil
}

// validate checks b as Validate does (name is for messages only).
func validate(b []byte, name string, width int) (*File, error) {
	f, err := check(b, name, width)
	if err != nil {
		return nil, err
	}
	// Decode the pages in parallel: this check runs before every dial.
	errs := make([]error, len(f.Pages))
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(runtime.NumCPU(), len(f.Pages)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = f.Decode(i)
			}
		}()
	}
	for i := range f.Pages {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("tiff: %s page %d: %w", name, i+1, err)
		}
	}
	return f, nil
}

// Check is Validate without decoding the image data: every IFD walked, every
// page width px wide (width <= 0 skips that), bilevel G4, of sane
// dimensions, with as many strips as its rows need, all inside the file and
// not overlapping. A TIFF truncated anywhere fails; corrupt strip data
// inside an intact structure is only found by Validate. It costs
// microseconds where Validate costs milliseconds per page, and returns the
// pages.
func Check(path string, width int) ([]Page, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tiff: %w", err)
	}
	f, err := check(b, filepath.Base(path), width)
	if err != nil {
		return nil, err
	}
	return f.Pages, nil
}

// Validate checks that path is a TIFF-F a fax engine can send whole: every
// page exactly width pixels wide (1728 for fax; width <= 0 skips the check),
// CCITT G4 compressed, and every strip decodes to exactly the page's rows.
// It returns the page count. Errors wrap ErrNotTIFF, ErrTruncated, ErrWidth,
// ErrCompression, ErrNoPages or ErrTooLarge (or an os error).
func Validate(path string, width int) (pages int, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("tiff: %w", err)
	}
	f, err := validate(b, filepath.Base(path), width)
	if err != nil {
		return 0, err
	}
	return len(f.Pages), nil
}

// Extract writes pages fromPage..N (1-based) of src into a new TIFF-F at dst
// and returns how many pages it holds. src must validate as G4 (any width);
// the strips are copied byte for byte, their offsets rewritten, resolution
// and photometric kept, PageNumber renumbered. dst is written to a temporary
// file in its directory, fsynced and renamed: it is either complete or
// untouched. fromPage outside 1..N fails with ErrPageRange.
func Extract(src, dst string, fromPage int) (pages int, err error) {
	return Concat(dst, Part{Path: src, From: fromPage})
}

// Part is pages From..N (1-based) of the TIFF-F at Path.
type Part struct {
	Path string
	From int
}

// Concat writes the pages of every part, in order, to dst as one TIFF-F and
// returns how many pages it holds; each part as for Extract (validated as
// G4, strips copied byte for byte, PageNumber renumbered across the whole
// file, dst complete or untouched).
func Concat(dst string, parts ...Part) (pages int, err error) {
	var all []pageOf
	for _, part := range parts {
		b, err := os.ReadFile(part.Path)
		if err != nil {
			return 0, fmt.Errorf("tiff: %w", err)
		}
		f, err := validate(b, filepath.Base(part.Path), 0)
		if err != nil {
			return 0, err
		}
		if part.From < 1 || part.From > len(f.Pages) {
			return 0, fmt.Errorf("tiff: extract from page %d of %s: %w (it has %d)", part.From, filepath.Base(part.Path), ErrPageRange, len(f.Pages))
		}
		for _, p := range f.Pages[part.From-1:] {
			all = append(all, pageOf{f, p})
		}
	}
	if len(all) == 0 {
		return 0, fmt.Errorf("tiff: %s: %w: no pages", filepath.Base(dst), ErrPageRange)
	}
	out, err := writePages(all)
	if err != nil {
		return 0, err
	}
	if err := atomicfile.Write(dst, out, 0o640); err != nil {
		return 0, err
	}
	return len(all), nil
}

// pageOf is a page and the file holding its strips.
type pageOf struct {
	f *File
	p Page
}

// writePages builds a little-endian TIFF-F holding pages (G4 pages of their
// files).
func writePages(pages []pageOf) ([]byte, error) {
	w := &tiffWriter{}
	w.buf.WriteString("II*\x00\x00\x00\x00\x00")
	prevNext := 4 // where to patch the offset of the next IFD
	for i, pg := range pages {
		p := pg.p
		strips, err := pg.f.strips(p)
		if err != nil {
			return nil, err
		}
		offs := make([]uint32, len(strips))
		counts := make([]uint32, len(strips))
		for s, data := range strips {
			w.pad()
			offs[s] = uint32(w.buf.Len())
			counts[s] = uint32(len(data))
			w.buf.Write(data)
		}
		if prevNext, err = w.ifd(pageEntries(p, i, len(pages), offs, counts), prevNext); err != nil {
			return nil, err
		}
	}
	return w.buf.Bytes(), nil
}

// ifdEntry is one TIFF tag: its type (3 SHORT, 4 LONG, 5 RATIONAL as pairs)
// and values.
type ifdEntry struct {
	tag, typ uint16
	vals     []uint32
}

func (e ifdEntry) count() int {
	if e.typ == 5 {
		return len(e.vals) / 2
	}
	return len(e.vals)
}

func (e ifdEntry) size() int {
	if e.typ == 3 {
		return 2 * len(e.vals)
	}
	return 4 * len(e.vals)
}

// pageEntries are the tags of page i of n, in ascending order as TIFF
// requires; a page without a resolution gets fine fax resolution.
func pageEntries(p Page, i, n int, offs, counts []uint32) []ifdEntry {
	xr, yr := p.XRes, p.YRes
	unit := p.ResUnit
	if xr[1] == 0 || yr[1] == 0 {
		xr, yr, unit = [2]uint32{204, 1}, [2]uint32{196, 1}, 2
	}
	return []ifdEntry{
		{tagSubfileType, 4, []uint32{2}}, // a page of a multi-page document
		{tagWidth, 4, []uint32{uint32(p.Width)}},
		{tagLength, 4, []uint32{uint32(p.Height)}},
		{tagBits, 3, []uint32{1}},
		{tagCompression, 3, []uint32{CompressionG4}},
		{tagPhotometric, 3, []uint32{uint32(p.Photometric)}},
		{tagFillOrder, 3, []uint32{uint32(max(p.FillOrder, 1))}},
		{tagStripOffsets, 4, offs},
		{tagSamples, 3, []uint32{1}},
		{tagRowsPerStrip, 4, []uint32{uint32(p.RowsPerStrip)}},
		{tagStripCounts, 4, counts},
		{tagXRes, 5, xr[:]},
		{tagYRes, 5, yr[:]},
		{tagT6Options, 4, []uint32{uint32(p.T6Options)}},
		{tagResUnit, 3, []uint32{uint32(unit)}},
		{tagPageNumber, 3, []uint32{uint32(i), uint32(n)}},
	}
}

// tiffWriter builds a little-endian TIFF in memory.
type tiffWriter struct{ buf bytes.Buffer }

func (w *tiffWriter) put16(v uint16) { w.buf.Write(binary.LittleEndian.AppendUint16(nil, v)) }
func (w *tiffWriter) put32(v uint32) { w.buf.Write(binary.LittleEndian.AppendUint32(nil, v)) }

// pad aligns the next write to a word boundary.
func (w *tiffWriter) pad() {
	if w.buf.Len()%2 == 1 {
		w.buf.WriteByte(0)
	}
}

// ifd writes the entries' out-of-line values, then the IFD, patches the
// previous next-IFD offset at prevNext to point at it and returns where this
// IFD's next offset is.
func (w *tiffWriter) ifd(entries []ifdEntry, prevNext int) (int, error) {
	le := binary.LittleEndian
	extOff := make([]uint32, len(entries))
	for k, e := range entries {
		if e.size() > 4 {
			w.pad()
			extOff[k] = uint32(w.buf.Len())
			for _, v := range e.vals {
				if e.typ == 3 {
					w.put16(uint16(v))
				} else {
					w.put32(v)
				}
			}
		}
	}
	w.pad()
	ifd := w.buf.Len()
	if uint64(ifd) > 0xffffffff-uint64(len(entries))*12-6 {
		return 0, fmt.Errorf("%w: the extracted TIFF would exceed 4 GB", ErrTooLarge)
	}
	le.PutUint32(w.buf.Bytes()[prevNext:], uint32(ifd))
	w.put16(uint16(len(entries)))
	for k, e := range entries {
		w.put16(e.tag)
		w.put16(e.typ)
		w.put32(uint32(e.count()))
		var v [4]byte
		switch {
		case extOff[k] != 0:
			le.PutUint32(v[:], extOff[k])
		case e.typ == 3:
			for j, x := range e.vals {
				le.PutUint16(v[j*2:], uint16(x))
			}
		default:
			le.PutUint32(v[:], e.vals[0])
		}
		w.buf.Write(v[:])
	}
	next := w.buf.Len()
	w.put32(0)
	return next, nil
}
