// Package tiff reads and checks fax TIFFs (TIFF-F: bilevel, CCITT T.6/G4)
// without external tools, and cuts a multi-page TIFF at a page for resuming
// a fax.
//
// Validate decodes every strip of every page: a TIFF that was truncated
// anywhere fails, because Asterisk would otherwise send the readable pages
// and report success (LAB.md §2).
package tiff

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"golang.org/x/image/ccitt"
)

// Sentinel errors; the returned errors wrap them with context.
var (
	ErrNotTIFF     = errors.New("tiff: not a TIFF file")
	ErrTruncated   = errors.New("tiff: truncated or corrupt")
	ErrWidth       = errors.New("tiff: wrong page width")
	ErrCompression = errors.New("tiff: not CCITT G4 compressed")
	ErrNoPages     = errors.New("tiff: no pages")
)

// Tags used here.
const (
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

// maxPages bounds the IFD walk (and IFD loops).
const maxPages = 10000

// Page describes one image (IFD).
type Page struct {
	Width, Height int
	Compression   int
	Photometric   int
	FillOrder     int
	RowsPerStrip  int
	XRes, YRes    [2]uint32 // rationals
	ResUnit       int
	StripOffsets  []uint32
	StripCounts   []uint32
}

// File is a parsed TIFF.
type File struct {
	data  []byte
	order binary.ByteOrder
	Pages []Page
}

// Parse walks every IFD of b. It checks structure only, not image data.
func Parse(b []byte) (*File, error) {
	if len(b) < 8 {
		return nil, ErrNotTIFF
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
		if len(f.Pages) >= maxPages {
			return nil, fmt.Errorf("%w: more than %d pages", ErrTruncated, maxPages)
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
	return f, nil
}

func (f *File) ifd(off uint32) (Page, uint32, error) {
	b, o := f.data, f.order
	if uint64(off)+2 > uint64(len(b)) {
		return Page{}, 0, fmt.Errorf("%w: IFD offset %d beyond the end (%d bytes)", ErrTruncated, off, len(b))
	}
	n := int(o.Uint16(b[off:]))
	end := uint64(off) + 2 + uint64(n)*12 + 4
	if end > uint64(len(b)) {
		return Page{}, 0, fmt.Errorf("%w: IFD at %d with %d entries runs past the end", ErrTruncated, off, n)
	}
	p := Page{Compression: 1, FillOrder: 1, ResUnit: 2}
	for i := 0; i < n; i++ {
		e := b[uint64(off)+2+uint64(i)*12:]
		tag, typ, count := o.Uint16(e), o.Uint16(e[2:]), o.Uint32(e[4:])
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
		case tagResUnit:
			p.ResUnit = int(first)
		case tagXRes, tagYRes:
			if len(vals) == 2 {
				if tag == tagXRes {
					p.XRes = [2]uint32{vals[0], vals[1]}
				} else {
					p.YRes = [2]uint32{vals[0], vals[1]}
				}
			}
		}
	}
	if p.RowsPerStrip <= 0 || p.RowsPerStrip > p.Height {
		p.RowsPerStrip = p.Height
	}
	return p, o.Uint32(b[end-4:]), nil
}

// values reads an entry's values (SHORT, LONG, RATIONAL as two LONGs);
// other types are skipped.
func (f *File) values(typ uint16, count uint32, inline []byte) ([]uint32, error) {
	size := map[uint16]uint64{3: 2, 4: 4, 5: 8}[typ]
	if size == 0 {
		return nil, nil
	}
	if count > 1<<20 {
		return nil, fmt.Errorf("%w: %d values", ErrTruncated, count)
	}
	total := size * uint64(count)
	src := inline
	if total > 4 {
		off := uint64(f.order.Uint32(inline))
		if off+total > uint64(len(f.data)) {
			return nil, fmt.Errorf("%w: values at %d run past the end", ErrTruncated, off)
		}
		src = f.data[off : off+total]
	}
	var out []uint32
	for i := uint64(0); i < uint64(count); i++ {
		switch typ {
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

// Resolution returns the page's resolution in dots per inch.
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

// strips returns the page's strips, checked against the file size.
func (f *File) strips(p Page) ([][]byte, error) {
	if len(p.StripOffsets) == 0 || len(p.StripOffsets) != len(p.StripCounts) {
		return nil, fmt.Errorf("%w: %d strip offsets, %d byte counts", ErrTruncated, len(p.StripOffsets), len(p.StripCounts))
	}
	out := make([][]byte, len(p.StripOffsets))
	for i, off := range p.StripOffsets {
		end := uint64(off) + uint64(p.StripCounts[i])
		if end > uint64(len(f.data)) {
			return nil, fmt.Errorf("%w: strip %d ends at %d, file has %d bytes", ErrTruncated, i, end, len(f.data))
		}
		out[i] = f.data[off:end]
	}
	return out, nil
}

// CheckStrips checks that page i's strips lie inside the file (any
// compression): a truncated file fails.
func (f *File) CheckStrips(i int) error {
	_, err := f.strips(f.Pages[i])
	return err
}

// Decode decompresses every strip of page i and checks the row count.
func (f *File) Decode(i int) error {
	p := f.Pages[i]
	if p.Compression != 4 {
		return fmt.Errorf("%w (compression %d)", ErrCompression, p.Compression)
	}
	if p.Width <= 0 || p.Height <= 0 || p.Width > 10000 || p.Height > 20000 {
		return fmt.Errorf("%w: %dx%d pixels", ErrTruncated, p.Width, p.Height)
	}
	strips, err := f.strips(p)
	if err != nil {
		return err
	}
	order := ccitt.MSB
	if p.FillOrder == 2 {
		order = ccitt.LSB
	}
	rowBytes := (p.Width + 7) / 8
	rows := p.Height
	for s, data := range strips {
		h := min(p.RowsPerStrip, rows)
		if h <= 0 {
			return fmt.Errorf("%w: more strips than rows", ErrTruncated)
		}
		r := ccitt.NewReader(bytes.NewReader(data), order, ccitt.Group4, p.Width, h, &ccitt.Options{Invert: p.Photometric == 0})
		n, err := io.Copy(io.Discard, r)
		if err != nil {
			return fmt.Errorf("%w: strip %d: %v", ErrTruncated, s, err)
		}
		if n != int64(rowBytes*h) {
			return fmt.Errorf("%w: strip %d decodes to %d rows, want %d", ErrTruncated, s, n/int64(rowBytes), h)
		}
		rows -= h
	}
	if rows != 0 {
		return fmt.Errorf("%w: strips hold %d rows fewer than the page's %d", ErrTruncated, rows, p.Height)
	}
	return nil
}

// Validate checks that path is a TIFF-F with every page width px wide, G4
// compressed and fully decodable; it returns the page count.
func Validate(path string, width int) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("tiff: %w", err)
	}
	f, err := Parse(b)
	if err != nil {
		return 0, fmt.Errorf("tiff: %s: %w", filepath.Base(path), err)
	}
	for i, p := range f.Pages {
		if width > 0 && p.Width != width {
			return 0, fmt.Errorf("tiff: %s page %d: %w: %d px, want %d", filepath.Base(path), i+1, ErrWidth, p.Width, width)
		}
	}
	// Decode the pages in parallel: this check runs on every conversion and
	// before every dial.
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
			return 0, fmt.Errorf("tiff: %s page %d: %w", filepath.Base(path), i+1, err)
		}
	}
	return len(f.Pages), nil
}

// Extract writes pages from..N (1-based) of src into a new TIFF at dst
// (written to a temporary file, fsynced, renamed) and returns how many pages
// it holds. Strips are copied byte for byte.
func Extract(src, dst string, from int) (int, error) {
	b, err := os.ReadFile(src)
	if err != nil {
		return 0, fmt.Errorf("tiff: %w", err)
	}
	f, err := Parse(b)
	if err != nil {
		return 0, fmt.Errorf("tiff: %s: %w", filepath.Base(src), err)
	}
	if from < 1 || from > len(f.Pages) {
		return 0, fmt.Errorf("tiff: extract from page %d of %d", from, len(f.Pages))
	}
	pages := f.Pages[from-1:]
	out, err := f.write(pages)
	if err != nil {
		return 0, err
	}
	return len(pages), writeFile(dst, out)
}

// write builds a little-endian TIFF-F holding pages.
func (f *File) write(pages []Page) ([]byte, error) {
	var buf bytes.Buffer
	le := binary.LittleEndian
	buf.WriteString("II*\x00\x00\x00\x00\x00")
	prevNext := 4 // where to patch the offset of the next IFD
	for i, p := range pages {
		strips, err := f.strips(p)
		if err != nil {
			return nil, err
		}
		offs := make([]uint32, len(strips))
		counts := make([]uint32, len(strips))
		for s, data := range strips {
			if buf.Len()%2 == 1 {
				buf.WriteByte(0)
			}
			offs[s] = uint32(buf.Len())
			counts[s] = uint32(len(data))
			buf.Write(data)
		}
		type entry struct {
			tag, typ uint16
			vals     []uint32
		}
		xr, yr := p.XRes, p.YRes
		if xr[1] == 0 {
			xr = [2]uint32{204, 1}
		}
		if yr[1] == 0 {
			yr = [2]uint32{196, 1}
		}
		entries := []entry{
			{tagWidth, 4, []uint32{uint32(p.Width)}},
			{tagLength, 4, []uint32{uint32(p.Height)}},
			{tagBits, 3, []uint32{1}},
			{tagCompression, 3, []uint32{4}},
			{tagPhotometric, 3, []uint32{uint32(p.Photometric)}},
			{tagFillOrder, 3, []uint32{uint32(p.FillOrder)}},
			{tagStripOffsets, 4, offs},
			{tagSamples, 3, []uint32{1}},
			{tagRowsPerStrip, 4, []uint32{uint32(p.RowsPerStrip)}},
			{tagStripCounts, 4, counts},
			{tagXRes, 5, xr[:]},
			{tagYRes, 5, yr[:]},
			{tagT6Options, 4, []uint32{0}},
			{tagResUnit, 3, []uint32{uint32(p.ResUnit)}},
			{tagPageNumber, 3, []uint32{uint32(i), uint32(len(pages))}},
		}
		// Out-of-line values first, then the IFD.
		extOff := make([]uint32, len(entries))
		for k, e := range entries {
			size := map[uint16]int{3: 2, 4: 4, 5: 8}[e.typ]
			n := len(e.vals)
			if e.typ == 5 {
				n /= 2
			}
			if size*n > 4 {
				if buf.Len()%2 == 1 {
					buf.WriteByte(0)
				}
				extOff[k] = uint32(buf.Len())
				for _, v := range e.vals {
					if e.typ == 3 {
						binary.Write(&buf, le, uint16(v))
					} else {
						binary.Write(&buf, le, v)
					}
				}
			}
		}
		if buf.Len()%2 == 1 {
			buf.WriteByte(0)
		}
		ifd := buf.Len()
		le.PutUint32(buf.Bytes()[prevNext:], uint32(ifd))
		binary.Write(&buf, le, uint16(len(entries)))
		for k, e := range entries {
			n := len(e.vals)
			if e.typ == 5 {
				n /= 2
			}
			binary.Write(&buf, le, e.tag)
			binary.Write(&buf, le, e.typ)
			binary.Write(&buf, le, uint32(n))
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
			buf.Write(v[:])
		}
		prevNext = buf.Len()
		buf.Write([]byte{0, 0, 0, 0})
	}
	return buf.Bytes(), nil
}

func writeFile(dst string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".tiff-*")
	if err != nil {
		return fmt.Errorf("tiff: %w", err)
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("tiff: write %s: %w", dst, err)
	}
	return nil
}
